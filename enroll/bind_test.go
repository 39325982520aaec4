package enroll

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
)

// initrdState puts the TPM where the initrd is when it unlocks: PCR 7 as
// the firmware left it, PCR 11 at "enter-initrd" (signed by key), PCR 15
// zero. It returns the .pcrsig.
func initrdState(t *testing.T, tpm transport.TPM, key *rsa.PrivateKey) []byte {
	t.Helper()
	extend(t, tpm, 7, "secure boot on, owner keys")
	extend(t, tpm, 11, "enter-initrd")
	sig, err := tpm2.SignPCRPolicy(key, tpm2.SHA256, []int{11}, map[int][]byte{11: readPCR(t, tpm, 11)})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestBinding: a bound volume verifies; a volume an attacker formatted
// with the same UUID and the binding token copied over does not, nor one
// without a token; the binding key is unusable once PCR 15 moved or
// without the signed PCR 11; Bind replaces an older token.
func TestBinding(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, tpm := testTPM(t)
	sig := initrdState(t, tpm, key)
	f, h, vk := testVolume(t)
	if _, err := Bind(tpm, f, h, vk, &key.PublicKey, sig); err != nil {
		t.Fatalf("Bind = %v", err)
	}
	if _, err := Bind(tpm, f, h, vk, &key.PublicKey, sig); err != nil || len(bindingTokenIDs(h)) != 1 {
		t.Fatalf("Bind again = %v, %d tokens, want one", err, len(bindingTokenIDs(h)))
	}
	if err := VerifyBinding(tpm, h, vk, &key.PublicKey, sig); err != nil {
		t.Fatalf("VerifyBinding(bound) = %v", err)
	}

	// The substitute: same UUID, the attacker's key, our token copied.
	path := filepath.Join(t.TempDir(), "evil.img")
	if _, err := luks2.FormatFile(path, 20<<20, testPass, luks2.FormatOptions{PBKDF: fastPBKDF, UUID: h.UUID()}); err != nil {
		t.Fatal(err)
	}
	ef, eh, evk := openVolume(t, path)
	if err := VerifyBinding(tpm, eh, evk, &key.PublicKey, sig); !errors.Is(err, ErrUnbound) {
		t.Errorf("VerifyBinding(substitute without token) = %v, want ErrUnbound", err)
	}
	if _, err := eh.AddToken(ef, -1, h.Meta.Tokens[itoa(bindingTokenIDs(h)[0])]); err != nil {
		t.Fatal(err)
	}
	if err := VerifyBinding(tpm, eh, evk, &key.PublicKey, sig); !errors.Is(err, ErrBindingMismatch) {
		t.Errorf("VerifyBinding(substitute with the token copied) = %v, want ErrBindingMismatch", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherSig, _ := tpm2.SignPCRPolicy(other, tpm2.SHA256, []int{11}, map[int][]byte{11: readPCR(t, tpm, 11)})
	if err := VerifyBinding(tpm, h, vk, &other.PublicKey, otherSig); !errors.Is(err, ErrBindingMismatch) {
		t.Errorf("VerifyBinding(another PCR key, as an attacker's own) = %v, want ErrBindingMismatch", err)
	}

	extend(t, tpm, VolumePCR, "a volume opened")
	if err := VerifyBinding(tpm, h, vk, &key.PublicKey, sig); !errors.Is(err, tpm2.ErrPolicyMismatch) {
		t.Errorf("VerifyBinding(PCR 15 moved) = %v, want ErrPolicyMismatch", err)
	}
	if _, err := Bind(tpm, f, h, vk, &key.PublicKey, nil); !errors.Is(err, tpm2.ErrNoSignature) {
		t.Errorf("Bind(no signature) = %v, want ErrNoSignature", err)
	}
}

// TestBindingOtherMachine: the tag of one TPM does not verify on another.
func TestBindingOtherMachine(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, tpm := testTPM(t)
	sig := initrdState(t, tpm, key)
	f, h, vk := testVolume(t)
	if _, err := Bind(tpm, f, h, vk, &key.PublicKey, sig); err != nil {
		t.Fatal(err)
	}
	_, tpm2nd := testTPM(t)
	sig2 := initrdState(t, tpm2nd, key)
	if err := VerifyBinding(tpm2nd, h, vk, &key.PublicKey, sig2); !errors.Is(err, tpm2.ErrPrimaryMismatch) {
		t.Errorf("VerifyBinding(another TPM) = %v, want ErrPrimaryMismatch (pinned primary)", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
