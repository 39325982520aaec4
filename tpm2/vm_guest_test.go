//go:build vmguest

package tpm2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// Guest side of TestVMPCR7AcrossBoots: the real kernel TPM driver and
// resource manager (/dev/tpmrm0) with OVMF's measurements in PCR 7. The
// sealed token and, for the check, the secret travel between boots on
// /dev/vda: u32 length, then JSON {"token":…,"secret":…}.

type vmRecord struct {
	Token  json.RawMessage `json:"token"`
	Secret []byte          `json:"secret"`
}

func vmOpen(t *testing.T) interface {
	Send([]byte) ([]byte, error)
	Close() error
} {
	t.Helper()
	tpm, err := Open(Device{}) // auto: /dev/tpmrm0, then /dev/tpm0
	if err != nil {
		t.Fatalf("Open(auto): %v", err)
	}
	t.Cleanup(func() { tpm.Close() })
	v, err := ReadPCRs(tpm, SHA256, []int{7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PCR 7 = %x", v[7])
	if bytes.Equal(v[7], make([]byte, 32)) {
		t.Fatal("PCR 7 is zero: the firmware measured nothing")
	}
	return tpm
}

func TestGuestSeal(t *testing.T) {
	tpm := vmOpen(t)
	secret, s, err := Seal(tpm, SealOptions{PCRs: []int{7}})
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	tok, _ := NewToken(s, 0).Marshal()
	b, _ := json.Marshal(vmRecord{Token: tok, Secret: secret})
	rec := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	if err := os.WriteFile("/dev/vda", append(rec, b...), 0); err != nil {
		t.Fatal(err)
	}
}

func vmUnseal(t *testing.T) ([]byte, []byte, error) {
	t.Helper()
	tpm := vmOpen(t)
	f, err := os.Open("/dev/vda")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n uint32
	if err := binary.Read(f, binary.BigEndian, &n); err != nil || n > 1<<16 {
		t.Fatalf("read record length: %d, %v", n, err)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 4); err != nil {
		t.Fatal(err)
	}
	var rec vmRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(rec.Token)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Sealed()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(tpm, s, UnsealOptions{})
	return got, rec.Secret, err
}

func TestGuestUnseal(t *testing.T) {
	got, want, err := vmUnseal(t)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Unseal on the next boot = %x, %v, want %x", got, err, want)
	}
}

func TestGuestUnsealRefused(t *testing.T) {
	_, _, err := vmUnseal(t)
	if !errors.Is(err, ErrPolicyMismatch) {
		t.Fatalf("Unseal on a boot with another PCR 7 = %v, want ErrPolicyMismatch", err)
	}
	t.Logf("refused: %v", err)
}
