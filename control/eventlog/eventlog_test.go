package eventlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"initos/internal/testenv"
)

const fixture = "testdata/ovmf-swtpm.bin" // OVMF 2022.11 + swtpm, captured by TestVM

func readFixture(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oracle is what tpm2_eventlog (tpm2-tools, the C oracle) prints.
type oracle struct {
	events []struct {
		pcr    uint32
		typ    string
		sha256 string
	}
	pcrs map[string]map[uint32]string // bank -> PCR -> hex
}

var (
	reEvent  = regexp.MustCompile(`^- EventNum: \d+`)
	rePCR    = regexp.MustCompile(`^  PCRIndex: (\d+)`)
	reType   = regexp.MustCompile(`^  EventType: (\S+)`)
	reAlg    = regexp.MustCompile(`^  - AlgorithmId: (\S+)`)
	reDigest = regexp.MustCompile(`^    Digest: "([0-9a-f]+)"`)
	reBank   = regexp.MustCompile(`^  (sha\d+):$`)
	reValue  = regexp.MustCompile(`^    (\d+)\s*: 0x([0-9a-f]+)`)
)

func runOracle(t *testing.T, path string) oracle {
	out, err := exec.Command(testenv.Tool(t, "tpm2_eventlog"), path).Output()
	if err != nil {
		t.Fatalf("tpm2_eventlog %s: %v", path, err)
	}
	o := oracle{pcrs: map[string]map[uint32]string{}}
	var alg, bank string
	inPCRs := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "pcrs:":
			inPCRs = true
		case inPCRs && reBank.MatchString(l):
			bank = reBank.FindStringSubmatch(l)[1]
			o.pcrs[bank] = map[uint32]string{}
		case inPCRs && reValue.MatchString(l):
			m := reValue.FindStringSubmatch(l)
			n, _ := strconv.Atoi(m[1])
			o.pcrs[bank][uint32(n)] = m[2]
		case reEvent.MatchString(l):
			o.events = append(o.events, struct {
				pcr    uint32
				typ    string
				sha256 string
			}{})
		case rePCR.MatchString(l):
			n, _ := strconv.Atoi(rePCR.FindStringSubmatch(l)[1])
			o.events[len(o.events)-1].pcr = uint32(n)
		case reType.MatchString(l):
			o.events[len(o.events)-1].typ = reType.FindStringSubmatch(l)[1]
		case reAlg.MatchString(l):
			alg = reAlg.FindStringSubmatch(l)[1]
		case reDigest.MatchString(l) && alg == "sha256":
			o.events[len(o.events)-1].sha256 = reDigest.FindStringSubmatch(l)[1]
		}
	}
	return o
}

// TestParseOracle compares Parse and Replay with tpm2_eventlog on OVMF's
// log: every event's PCR, type and SHA-256 digest, and the PCR values of
// all four banks.
func TestParseOracle(t *testing.T) {
	events, err := Parse(readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	o := runOracle(t, fixture)
	if len(o.events) != len(events)+1 { // the oracle lists the header event
		t.Fatalf("Parse found %d events, tpm2_eventlog %d (with the header)", len(events), len(o.events))
	}
	for i, e := range events {
		want := o.events[i+1]
		got := fmt.Sprintf("%d %s %x", e.PCR, TypeName(e.Type), e.Digests[SHA256])
		if w := fmt.Sprintf("%d %s %s", want.pcr, want.typ, want.sha256); got != w {
			t.Errorf("event %d = %s, tpm2_eventlog %s", i+1, got, w)
		}
	}
	for name, alg := range map[string]Alg{"sha1": SHA1, "sha256": SHA256, "sha384": SHA384, "sha512": SHA512} {
		pcrs, err := Replay(events, alg)
		if err != nil {
			t.Fatal(err)
		}
		if len(pcrs) != len(o.pcrs[name]) {
			t.Errorf("Replay(%s) has %d PCRs, tpm2_eventlog %d", name, len(pcrs), len(o.pcrs[name]))
		}
		for i, want := range o.pcrs[name] {
			if got := hex.EncodeToString(pcrs[i]); got != want {
				t.Errorf("Replay(%s) PCR %d = %s, tpm2_eventlog %s", name, i, got, want)
			}
		}
	}
}

func TestDescribe(t *testing.T) {
	events, err := Parse(readFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for _, e := range events {
		if e.Type == 0x80000001 {
			vars = append(vars, e.Describe())
		}
	}
	if got := strings.Join(vars, ","); !strings.HasPrefix(got, "SecureBoot,PK,KEK,db,dbx") {
		t.Errorf("PCR 7 variable events = %s, want SecureBoot,PK,KEK,db,dbx first", got)
	}
	if got := TypeName(0x12345678); got != "0x12345678" {
		t.Errorf("TypeName(unknown) = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	good := readFixture(t)
	headerLen := 32 + int(binary.LittleEndian.Uint32(good[28:]))
	badAlg := bytes.Clone(good)
	binary.LittleEndian.PutUint16(badAlg[headerLen+12:], 0x0099) // first event's first digest algorithm
	manyDigests := bytes.Clone(good)
	binary.LittleEndian.PutUint32(manyDigests[headerLen+8:], 1000)
	hugeEvent := bytes.Clone(good)
	binary.LittleEndian.PutUint32(hugeEvent[28:], 0xffffffff)
	sha1Log := bytes.Clone(good)
	copy(sha1Log[32:], "Spec ID Event00\x00")
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "header PCR index needs 4 bytes, 0 left"},
		{"TPM 1.2 log", sha1Log, ErrNotCryptoAgile.Error()},
		{"header size", hugeEvent, "header event data needs 4294967295 bytes"},
		{"truncated event", good[:len(good)-3], "event data needs"},
		{"truncated digest", good[:headerLen+20], "digest needs"},
		{"unknown algorithm", badAlg, "digest algorithm 0x0099 is not in the header"},
		{"digest count", manyDigests, "1000 digests, but the header names 4 algorithms"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want error %q", tt.name, err, tt.want)
		}
	}
	events, _ := Parse(good)
	if _, err := Replay(events, Alg(0x0099)); err == nil || !strings.Contains(err.Error(), "unsupported algorithm 0x0099") {
		t.Errorf("Replay(0x0099) = %v, want unsupported", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFixture(f))
	f.Add(readFixture(f)[:200])
	f.Fuzz(func(t *testing.T, b []byte) {
		events, err := Parse(b)
		if err != nil {
			return
		}
		for _, e := range events {
			_ = e.Describe()
		}
		Replay(events, SHA256)
	})
}
