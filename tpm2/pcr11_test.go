package tpm2

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

const (
	stubPath    = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	measurePath = "/usr/lib/systemd/systemd-measure"
)

// requireFile skips (or fails in CI) when an oracle outside PATH is absent.
func requireFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		testenv.Missing(t, "%s missing", path)
	}
	return path
}

// ukiParts are the section files of a test UKI.
type ukiParts struct{ dir, linux, osrel, cmdline, initrd string }

func writeParts(t testing.TB, cmdline string) ukiParts {
	t.Helper()
	dir := t.TempDir()
	p := ukiParts{dir: dir, linux: filepath.Join(dir, "linux"), osrel: filepath.Join(dir, "osrel"),
		cmdline: filepath.Join(dir, "cmdline"), initrd: filepath.Join(dir, "initrd")}
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	for path, data := range map[string][]byte{
		p.linux: rnd(70001), p.osrel: []byte("ID=initos\nVERSION_ID=1\n"),
		p.cmdline: []byte(cmdline), p.initrd: rnd(33333),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// buildUKI assembles a UKI from Debian's systemd-stub with objcopy, the
// way the systemd 252 man pages describe.
func buildUKI(t testing.TB, p ukiParts) string {
	t.Helper()
	stub := requireFile(t, stubPath)
	out := filepath.Join(p.dir, "uki.efi")
	testenv.Run(t, "objcopy",
		"--add-section", ".osrel="+p.osrel, "--change-section-vma", ".osrel=0x20000",
		"--add-section", ".cmdline="+p.cmdline, "--change-section-vma", ".cmdline=0x30000",
		"--add-section", ".linux="+p.linux, "--change-section-vma", ".linux=0x2000000",
		"--add-section", ".initrd="+p.initrd, "--change-section-vma", ".initrd=0x3000000",
		stub, out)
	return out
}

func predictFile(t testing.TB, path string, phases ...string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := PredictPCR11(f, phases...)
	if err != nil {
		t.Fatalf("PredictPCR11(%s): %v", path, err)
	}
	return v
}

// TestPredictPCR11MatchesSystemdMeasure compares with systemd-measure 252
// (the oracle systemd itself signs with). It reports values after the
// "enter-initrd" phase, so both sides include that phase.
func TestPredictPCR11MatchesSystemdMeasure(t *testing.T) {
	measure := requireFile(t, measurePath)
	p := writeParts(t, "console=ttyS0 root=/dev/vda")
	uki := buildUKI(t, p)
	out, err := exec.Command(measure, "calculate", "--bank=sha256", "--phase=enter-initrd",
		"--linux="+p.linux, "--osrel="+p.osrel, "--cmdline="+p.cmdline, "--initrd="+p.initrd).Output()
	if err != nil {
		t.Fatalf("systemd-measure: %v", err)
	}
	_, want, ok := strings.Cut(strings.TrimSpace(string(out)), "11:sha256=")
	if !ok {
		t.Fatalf("systemd-measure output has no PCR 11 value:\n%s", out)
	}
	if got := hex.EncodeToString(predictFile(t, uki, "enter-initrd")); got != want {
		t.Errorf("PredictPCR11(uki, enter-initrd) = %s, want %s (systemd-measure)", got, want)
	}
}

// TestPredictPCR11Replay extends a fresh swtpm PCR 11 with the UKI's
// measurements and reads back the value the TPM computed.
func TestPredictPCR11Replay(t *testing.T) {
	uki := buildUKI(t, writeParts(t, "quiet"))
	tpm := startSwtpm(t).Open(t)
	f, err := os.Open(uki)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := MeasureUKI(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Errorf("MeasureUKI: %d events, want 8 (name+data of 4 sections)", len(ms))
	}
	for _, m := range ms {
		if err := ExtendPCR(tpm, SHA256, 11, m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	v, err := ReadPCRs(tpm, SHA256, []int{11})
	if err != nil {
		t.Fatal(err)
	}
	if want := predictFile(t, uki); !bytes.Equal(v[11], want) {
		t.Errorf("PCR 11 after replay = %x, PredictPCR11 = %x", v[11], want)
	}
}

func TestMeasureUKIBad(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("MZ"), bytes.Repeat([]byte{0xff}, 512)} {
		if _, err := PredictPCR11(bytes.NewReader(in)); err == nil {
			t.Errorf("PredictPCR11(%d junk bytes) = nil error", len(in))
		}
	}
}

func FuzzPredictPCR11(f *testing.F) {
	if b, err := os.ReadFile(stubPath); err == nil {
		f.Add(b[:min(len(b), 4096)])
	}
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = PredictPCR11(bytes.NewReader(data))
	})
}
