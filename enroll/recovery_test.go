package enroll

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"initos/efivar"
	"initos/internal/testenv"
	"initos/tpm2"
)

var recoveryRE = regexp.MustCompile(`^[cbdefghijklnrtuv]{8}(-[cbdefghijklnrtuv]{8}){7}$`)

// TestAddRecoveryKey: the key has systemd's shape and opens the volume,
// with our luks2 and with cryptsetup (the oracle).
func TestAddRecoveryKey(t *testing.T) {
	f, h, vk := testVolume(t)
	key, slot, err := AddRecoveryKey(f, h, vk)
	if err != nil {
		t.Fatal(err)
	}
	if !recoveryRE.MatchString(key) {
		t.Errorf("AddRecoveryKey key = %q, want 8 groups of 8 modhex characters", key)
	}
	got, n, err := h.Unlock(f, []byte(key))
	if err != nil || n != slot || !bytes.Equal(got.Bytes(), vk.Bytes()) {
		t.Fatalf("Unlock(recovery key) = slot %d, %v; want slot %d", n, err, slot)
	}
	got.Destroy()
	kf := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(kf, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "open", "--test-passphrase", "--key-file", kf, f.Name())
}

// TestReseal is the recovery flow of the control plane: a firmware update
// changes PCR 7, the TPM refuses, the owner unlocks with the recovery key
// (the initrd then measures the volume into PCR 15), Reseal binds a new
// token to the new PCR 7 and to PCR 15 = 0 again, and the next boot
// unlocks with the TPM alone.
func TestReseal(t *testing.T) {
	sw, tpm := testTPM(t)
	extend(t, tpm, 7, "db v1")
	f, h, vk := testVolume(t)
	old, err := Enroll(tpm, f, h, vk, DefaultPolicy(nil))
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := AddRecoveryKey(f, h, vk)
	if err != nil {
		t.Fatal(err)
	}
	tpm.Close()
	sw.Reboot(t) // with the updated firmware
	tpm = connect(t, sw)
	extend(t, tpm, 7, "db v2")
	if _, _, err := Unlock(tpm, f, h, UnlockOptions{}); !errors.Is(err, tpm2.ErrPolicyMismatch) {
		t.Fatalf("Unlock after the PCR 7 change = %v, want ErrPolicyMismatch", err)
	}
	rk, _, err := h.Unlock(f, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	defer rk.Destroy()
	if err := MeasureVolume(tpm, h, "root", rk); err != nil {
		t.Fatal(err)
	}
	e, err := Reseal(tpm, f, h, rk, ResealOptions{})
	if err != nil {
		t.Fatalf("Reseal: %v", err)
	}
	toks, _ := Tokens(h)
	if len(toks) != 1 || toks[0].ID != e.Token || old.Keyslot == e.Keyslot || h.Meta.Keyslots[strconv.Itoa(old.Keyslot)] != nil {
		t.Errorf("after Reseal: tokens %+v, keyslots %v; want only token %d", toks, h.KeyslotIDs(), e.Token)
	}
	if lit := toks[0].Sealed.Literal; len(lit) != 1 || lit[0] != 15 {
		t.Errorf("resealed token's literal PCRs = %v, want [15]", lit)
	}
	tpm.Close()
	sw.Reboot(t)
	tpm = connect(t, sw)
	extend(t, tpm, 7, "db v2")
	got, _, err := Unlock(tpm, f, h, UnlockOptions{})
	if err != nil {
		t.Fatalf("Unlock on the next boot after Reseal: %v", err)
	}
	got.Destroy()
}

func TestResealErrors(t *testing.T) {
	_, tpm := testTPM(t)
	f, h, vk := testVolume(t)
	if _, err := Reseal(tpm, f, h, vk, ResealOptions{}); !errors.Is(err, ErrNoToken) {
		t.Errorf("Reseal without a token or policy = %v, want ErrNoToken", err)
	}
	if _, err := Enroll(tpm, f, h, vk, Policy{PIN: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := Reseal(tpm, f, h, vk, ResealOptions{}); !errors.Is(err, tpm2.ErrWrongPIN) {
		t.Errorf("Reseal of a PIN token without a PIN = %v, want ErrWrongPIN", err)
	}
	p := Policy{PCRs: []int{}}
	e, err := Reseal(tpm, f, h, vk, ResealOptions{Policy: &p})
	if err != nil {
		t.Fatalf("Reseal with a given policy: %v", err)
	}
	if toks, _ := Tokens(h); len(toks) != 1 || toks[0].Sealed.PIN || len(toks[0].Sealed.PCRs) != 0 || toks[0].ID != e.Token {
		t.Errorf("Reseal with a given policy left tokens %+v", toks)
	}
}

// TestCheckSecureBoot reads a fake efivarfs directory.
func TestCheckSecureBoot(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vars      map[string][]byte // name -> data (attributes added)
		want      error
		wantInMsg string
	}{
		{"enforced", map[string][]byte{"SecureBoot": {1}, "SetupMode": {0}}, nil, ""},
		{"off", map[string][]byte{"SecureBoot": {0}, "SetupMode": {0}}, ErrSecureBootOff, "SecureBoot=0"},
		{"setup-mode", map[string][]byte{"SecureBoot": {0}, "SetupMode": {1}}, ErrSetupMode, "SetupMode=1"},
		{"no-efi", map[string][]byte{}, ErrSecureBootOff, "SecureBoot=0"},
		{"malformed", map[string][]byte{"SecureBoot": {1, 1}}, nil, "2 bytes, want 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &efivar.Dir{Path: t.TempDir()}
			for name, data := range tc.vars {
				if err := s.Set(name, efivar.GlobalVariable, 6, data); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckSecureBoot(s)
			switch {
			case tc.want == nil && tc.wantInMsg == "" && err != nil:
				t.Errorf("CheckSecureBoot = %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("CheckSecureBoot = %v, want %v", err, tc.want)
			case tc.wantInMsg != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantInMsg))):
				t.Errorf("CheckSecureBoot = %v, want an error containing %q", err, tc.wantInMsg)
			}
		})
	}
}
