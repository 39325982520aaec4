package enroll

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"

	"initos/luks2"
	"initos/tpm2"
)

func TestEnrollUnlock(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		pin    []byte
	}{
		{"zero-value-pcr7", Policy{}, nil},
		{"default-unsigned", DefaultPolicy(nil), nil},
		{"default-signed", DefaultPolicy(&key.PublicKey), nil},
		{"no-pcrs-pin", Policy{PCRs: []int{}, PIN: []byte("1234")}, []byte("1234")},
		{"srk", Policy{SRK: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tpm := testTPM(t)
			extend(t, tpm, 7, "secure boot on")
			extend(t, tpm, 11, "uki")
			f, h, vk := testVolume(t)
			e, err := Enroll(tpm, f, h, vk, tc.policy)
			if err != nil {
				t.Fatalf("Enroll: %v", err)
			}
			if e.Keyslot != 1 || e.Token != 0 {
				t.Errorf("Enroll = %+v, want keyslot 1, token 0", e)
			}
			o := UnlockOptions{PIN: tc.pin}
			if tc.policy.PublicKey != nil {
				o.Signature = sign(t, key, readPCR(t, tpm, 11))
			}
			got, tok, err := Unlock(tpm, f, h, o)
			if err != nil {
				t.Fatalf("Unlock: %v", err)
			}
			defer got.Destroy()
			if !bytes.Equal(got.Bytes(), vk.Bytes()) || tok.ID != e.Token || tok.Keyslot != e.Keyslot {
				t.Errorf("Unlock = key equal %v, token %d slot %d; want the volume key, token %d slot %d",
					bytes.Equal(got.Bytes(), vk.Bytes()), tok.ID, tok.Keyslot, e.Token, e.Keyslot)
			}
			if !got.Locked() {
				t.Log("volume key not mlock'ed (RLIMIT_MEMLOCK)")
			}
		})
	}
}

func sign(t *testing.T, key *rsa.PrivateKey, pcr11 []byte) []byte {
	t.Helper()
	b, err := tpm2.SignPCRPolicy(key, tpm2.SHA256, []int{11}, map[int][]byte{11: pcr11})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUnlockNamesPCR: when the TPM refuses, the error says which PCR
// differs and shows both values, for the default policy's PCR 7 and 15,
// and for a systemd-style token that records no values (PCR 15 guessed
// from the all-zero convention).
func TestUnlockNamesPCR(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pcr       int
		unrecord  bool // strip the recorded values, as in systemd's tokens
		wantField string
	}{
		{"pcr7", 7, false, "PCR 7 is "},
		{"pcr15", 15, false, "PCR 15 is "},
		{"pcr15-unrecorded", 15, true, "PCR 15 is "},
		{"pcr7-unrecorded", 7, true, "which one is unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tpm := testTPM(t)
			extend(t, tpm, 7, "secure boot on")
			f, h, vk := testVolume(t)
			if _, err := Enroll(tpm, f, h, vk, DefaultPolicy(nil)); err != nil {
				t.Fatal(err)
			}
			before := readPCR(t, tpm, tc.pcr)
			extend(t, tpm, tc.pcr, "something else")
			after := readPCR(t, tpm, tc.pcr)
			toks, _ := Tokens(h)
			if tc.unrecord {
				toks[0].Sealed.PCRValues = nil
			}
			_, err := UnlockToken(tpm, f, h, toks[0], UnlockOptions{})
			var pe *tpm2.PolicyError
			if !errors.Is(err, tpm2.ErrPolicyMismatch) || !errors.As(err, &pe) {
				t.Fatalf("UnlockToken after extending PCR %d = %v, want a *tpm2.PolicyError", tc.pcr, err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("UnlockToken error = %q, want it to contain %q", err, tc.wantField)
			}
			if strings.Contains(tc.wantField, "PCR") {
				want := fmt.Sprintf("PCR %d is %x, expected %x", tc.pcr, after, before)
				if !strings.Contains(err.Error(), want) {
					t.Errorf("UnlockToken error = %q, want %q", err, want)
				}
			}
		})
	}
}

func TestUnlockErrors(t *testing.T) {
	_, tpm := testTPM(t)
	f, h, vk := testVolume(t)
	if _, _, err := Unlock(tpm, f, h, UnlockOptions{}); !errors.Is(err, ErrNoToken) {
		t.Errorf("Unlock without token = %v, want ErrNoToken", err)
	}
	if _, err := Enroll(tpm, f, h, vk, Policy{PCRs: []int{}, PIN: []byte("right")}); err != nil {
		t.Fatal(err)
	}
	_, _, err := Unlock(tpm, f, h, UnlockOptions{PIN: []byte("wrong")})
	var te *TokenError
	if !errors.Is(err, tpm2.ErrWrongPIN) || !errors.As(err, &te) || te.ID != 0 {
		t.Errorf("Unlock(wrong PIN) = %v, want ErrWrongPIN in a *TokenError for token 0", err)
	}
	// A token naming the wrong keyslot: the TPM unseals, the keyslot
	// refuses the passphrase.
	toks, _ := Tokens(h)
	toks[0].Keyslot = 0
	if _, err := UnlockToken(tpm, f, h, toks[0], UnlockOptions{PIN: []byte("right")}); !errors.Is(err, luks2.ErrWrongPassphrase) {
		t.Errorf("UnlockToken(keyslot 0) = %v, want ErrWrongPassphrase", err)
	}
	// Another TPM: the pinned primary key does not match.
	_, other := testTPM(t)
	if _, _, err := Unlock(other, f, h, UnlockOptions{PIN: []byte("right")}); !errors.Is(err, tpm2.ErrPrimaryMismatch) {
		t.Errorf("Unlock on another TPM = %v, want ErrPrimaryMismatch", err)
	}
}

func TestEnrollErrors(t *testing.T) {
	_, tpm := testTPM(t)
	f, h, _ := testVolume(t)
	wrong := luks2.SecretFrom(make([]byte, 64))
	defer wrong.Destroy()
	if _, err := Enroll(tpm, f, h, wrong, Policy{}); !errors.Is(err, luks2.ErrWrongPassphrase) {
		t.Errorf("Enroll(wrong volume key) = %v, want ErrWrongPassphrase", err)
	}
	f2, h2, vk := testVolume(t)
	for _, tc := range []struct {
		name string
		p    Policy
		want string
	}{
		{"literal-not-bound", Policy{PCRs: []int{7}, PCRValues: map[int][]byte{15: make([]byte, 32)}}, "PCR 15 has a literal value but is not in the bound PCRs 7"},
		{"literal-size", Policy{PCRs: []int{15}, PCRValues: map[int][]byte{15: make([]byte, 20)}}, "PCR 15 value is 20 bytes, want 32"},
		{"pcr-range", Policy{PCRs: []int{24}}, "PCR index 24 out of range"},
	} {
		if _, err := Enroll(tpm, f2, h2, vk, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Enroll(%s) = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
	if n := len(h2.Meta.Keyslots); n != 1 {
		t.Errorf("failed enrollments left %d keyslots, want 1", n)
	}
}

// TestUnlockSignedNamesPCR11: with a signed PCR 11 policy and a UKI whose
// PCR 11 no signature covers, the error says so and shows PCR 11.
func TestUnlockSignedNamesPCR11(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, tpm := testTPM(t)
	extend(t, tpm, 11, "uki v1")
	f, h, vk := testVolume(t)
	if _, err := Enroll(tpm, f, h, vk, DefaultPolicy(&key.PublicKey)); err != nil {
		t.Fatal(err)
	}
	sig := sign(t, key, readPCR(t, tpm, 11))
	extend(t, tpm, 11, "an unsigned uki")
	_, _, err = Unlock(tpm, f, h, UnlockOptions{Signature: sig})
	want := fmt.Sprintf("(PCR 11 is %x; no signature by the enrolled key", readPCR(t, tpm, 11))
	if !errors.Is(err, tpm2.ErrNoSignature) || !errors.Is(err, tpm2.ErrPolicyMismatch) || !strings.Contains(err.Error(), want) {
		t.Errorf("Unlock with an unsigned PCR 11 = %v, want ErrNoSignature containing %q", err, want)
	}
	t.Log(err)
}
