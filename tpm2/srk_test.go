package tpm2

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"initos/internal/testenv"
)

// systemdSRK is a "tpm2_srk" field systemd 255 wrote on a real machine
// (public data: a handle, a name and an ECC public key), found in a
// published luksDump: it must parse, and its name must be the name of
// its public area.
const systemdSRK = "gQAAAQAiAAvfr86mWQ4ncWaXV9jUk3nRHRw/bEYnAiQSalhvf/6mpwAAAAEAWgAjAAsAAwRyAAAABgCAAEMAEAADABAAIP6Ye/LshHa6QKXX2NTPu7PEtBsUMnV57+02mjS75wKXACDvxzC6RaHZbojoiA3IzwXNp7vsM285RQApR76fkT8xKA=="

func TestParseSRKSystemd(t *testing.T) {
	b, _ := base64.StdEncoding.DecodeString(systemdSRK)
	k, err := ParseSRK(b)
	if err != nil {
		t.Fatalf("ParseSRK(systemd's tpm2_srk) = %v", err)
	}
	if k.Handle != SRKHandle || k.Public.Type != tpm2.TPMAlgECC || !k.Public.ObjectAttributes.NoDA {
		t.Errorf("ParseSRK = handle 0x%x type 0x%x noDA %v, want 0x81000001, ECC, noDA", uint32(k.Handle), uint16(k.Public.Type), k.Public.ObjectAttributes.NoDA)
	}
	if got := k.Marshal(); !bytes.Equal(got, b) {
		t.Errorf("Marshal(ParseSRK(b)) = %x, want %x", got, b)
	}
}

func TestParseSRKErrors(t *testing.T) {
	good, _ := base64.StdEncoding.DecodeString(systemdSRK)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "0 bytes, no handle"},
		{"transient", mod(func(b []byte) []byte { b[0] = 0x80; return b }), "is not a persistent object"},
		{"name-truncated", good[:10], "name: size 34 exceeds"},
		{"not-key", mod(func(b []byte) []byte { b[4+36+3] = 2; return b }), "resource type is not a key"},
		{"trailing", append(append([]byte(nil), good...), 0), "1 trailing bytes"},
		{"wrong-name", mod(func(b []byte) []byte { b[10] ^= 1; return b }), "is not the name"},
		{"public-truncated", good[:len(good)-1], "public area: size 90 exceeds"},
	} {
		if _, err := ParseSRK(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSRK(%s) = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func FuzzParseSRK(f *testing.F) {
	b, _ := base64.StdEncoding.DecodeString(systemdSRK)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseSRK(b)
		if err != nil {
			return
		}
		if got := k.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(ParseSRK(%x)) = %x", b, got)
		}
	})
}

// TestSRKSealUnseal: sealing under the persistent SRK (systemd 254+'s
// scheme) round-trips through the token; the SRK serialization equals
// what tpm2-tss writes (tpm2_readpublic -t, the oracle); a different key
// at the SRK handle is refused with ErrPrimaryMismatch.
func TestSRKSealUnseal(t *testing.T) {
	sw := startSwtpmTCP(t)
	var s *Sealed
	var secret []byte
	withTPM(t, sw, func(tpm *Counter) {
		var err error
		if secret, s, err = Seal(tpm, SealOptions{SRK: true, PCRs: []int{7}}); err != nil {
			t.Fatalf("Seal(SRK): %v", err)
		}
	})
	raw, _ := NewToken(s, 1).Marshal()
	if !bytes.Contains(raw, []byte(`"tpm2_srk":"gQAAAQ`)) || bytes.Contains(raw, []byte("tpm2-primary-alg")) {
		t.Errorf("SRK token = %s, want tpm2_srk and no tpm2-primary-alg", raw)
	}
	tok, err := ParseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := tok.Sealed()
	withTPM(t, sw, func(tpm *Counter) {
		if got, err := Unseal(tpm, parsed, UnsealOptions{}); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("Unseal(SRK token) = %x, %v", got, err)
		}
	})
	tr := filepath.Join(t.TempDir(), "srk.tr")
	tool := testenv.Tool(t, "tpm2_readpublic")
	cmd := exec.Command(tool, "-T", fmt.Sprintf("swtpm:host=127.0.0.1,port=%d", sw.Device.Port), "-c", "0x81000001", "-t", tr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tpm2_readpublic -t: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(tr)
	if got := parsed.SRK.Marshal(); !bytes.Equal(got, want) {
		t.Errorf("SRK serialization = %x, tpm2-tss's Esys_TR_Serialize = %x", got, want)
	}
	withTPM(t, sw, func(tpm *Counter) {
		replaceSRK(t, tpm)
		if _, err := Unseal(tpm, parsed, UnsealOptions{}); !errors.Is(err, ErrPrimaryMismatch) {
			t.Errorf("Unseal with another key at the SRK handle = %v, want ErrPrimaryMismatch", err)
		}
	})
}

// replaceSRK evicts the SRK and persists an RSA storage key in its place.
func replaceSRK(t *testing.T, tpm *Counter) {
	t.Helper()
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	k, err := ReadSRK(tpm, SRKHandle)
	if err != nil || k == nil {
		t.Fatalf("ReadSRK = %v, %v", k, err)
	}
	if _, err := (tpm2.EvictControl{Auth: owner, ObjectHandle: &tpm2.NamedHandle{Handle: SRKHandle, Name: tpm2.TPM2BName{Buffer: k.Name}}, PersistentHandle: SRKHandle}).Execute(tpm); err != nil {
		t.Fatalf("evict SRK: %v", err)
	}
	p, err := createPrimary(tpm, PrimaryRSA)
	if err != nil {
		t.Fatal(err)
	}
	defer flush(tpm, p.handle)
	if _, err := (tpm2.EvictControl{Auth: owner, ObjectHandle: &tpm2.NamedHandle{Handle: p.handle, Name: p.name}, PersistentHandle: SRKHandle}).Execute(tpm); err != nil {
		t.Fatalf("persist another key: %v", err)
	}
}
