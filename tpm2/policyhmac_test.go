package tpm2

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"
)

// signCurrent11 signs the TPM's current PCR 11 value with key (.pcrsig).
func signCurrent11(t *testing.T, tpm transport.TPM, key *rsa.PrivateKey) []byte {
	t.Helper()
	cur, err := ReadPCRs(tpm, SHA256, []int{11})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := SignPCRPolicy(key, SHA256, []int{11}, cur)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestPolicyHMAC (swtpm): the key is the same for the same TPM, label and
// PCR state; another PCR 7, another TPM or another label give another
// one; it is usable only with a signature of PCR 11 and PCR 15 at its
// literal value.
func TestPolicyHMAC(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tpm := startSwtpm(t).Open(t)
	extend(t, tpm, 11, "enter-initrd")
	sig := signCurrent11(t, tpm, key)
	p := HMACPolicy{PublicKey: &key.PublicKey, PCRs: []int{7, 15}, Values: map[int][]byte{15: make([]byte, 32)}}
	label, data := []byte("test binding v1"), []byte("volume 1")
	mac, primary, err := PolicyHMAC(tpm, p, label, data, sig)
	if err != nil {
		t.Fatalf("PolicyHMAC = %v", err)
	}
	p.PrimaryName = primary
	again, _, err := PolicyHMAC(tpm, p, label, data, sig)
	if err != nil || !bytes.Equal(again, mac) {
		t.Errorf("PolicyHMAC again = %x, %v, want the same %x", again, err, mac)
	}
	for name, other := range map[string][]byte{"label": label[1:], "data": data[1:]} {
		l, d := label, data
		if name == "label" {
			l = other
		} else {
			d = other
		}
		if m, _, err := PolicyHMAC(tpm, p, l, d, sig); err != nil || bytes.Equal(m, mac) {
			t.Errorf("PolicyHMAC(other %s) = %x, %v, want another MAC", name, m, err)
		}
	}
	if _, _, err := PolicyHMAC(tpm, p, label, data, nil); !errors.Is(err, ErrNoSignature) {
		t.Errorf("PolicyHMAC(no signature) = %v, want ErrNoSignature", err)
	}
	if _, _, err := PolicyHMAC(startSwtpm(t).Open(t), HMACPolicy{PublicKey: &key.PublicKey, PrimaryName: primary}, label, data, sig); !errors.Is(err, ErrPrimaryMismatch) {
		t.Errorf("PolicyHMAC(another TPM, pinned) = %v, want ErrPrimaryMismatch", err)
	}
	other := startSwtpm(t).Open(t)
	extend(t, other, 11, "enter-initrd")
	if m, _, err := PolicyHMAC(other, HMACPolicy{PublicKey: &key.PublicKey, PCRs: []int{7, 15}}, label, data, sig); err != nil || bytes.Equal(m, mac) {
		t.Errorf("PolicyHMAC(another TPM) = %x, %v, want another MAC", m, err)
	}
	extend(t, tpm, 7, "secure boot changed")
	if m, _, err := PolicyHMAC(tpm, p, label, data, sig); err != nil || bytes.Equal(m, mac) {
		t.Errorf("PolicyHMAC(PCR 7 changed) = %x, %v, want another MAC (another key)", m, err)
	}
	extend(t, tpm, 15, "a volume opened")
	if _, _, err := PolicyHMAC(tpm, p, label, data, sig); !errors.Is(err, ErrPolicyMismatch) {
		t.Errorf("PolicyHMAC(PCR 15 extended) = %v, want ErrPolicyMismatch", err)
	}
	extend(t, tpm, 11, "leave-initrd")
	p.Values = nil
	if _, _, err := PolicyHMAC(tpm, p, label, data, sig); !errors.Is(err, ErrNoSignature) {
		t.Errorf("PolicyHMAC(after leave-initrd) = %v, want ErrNoSignature", err)
	}
	if _, _, err := PolicyHMAC(tpm, HMACPolicy{}, label, data, sig); err == nil {
		t.Errorf("PolicyHMAC(no key) succeeded")
	}
}
