package luks2

import (
	"errors"
	"strings"
	"testing"
)

// TestLUKS1Refused reproduces issue 11: a LUKS1 volume gave "not found at
// any valid offset"; the error now says LUKS1 is not supported.
func TestLUKS1Refused(t *testing.T) {
	img := newImage(t, 20<<20)
	if _, ok := cryptsetup(t, "luksFormat", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-file", keyFile(t, "k"), img); !ok {
		t.Fatal("cryptsetup luksFormat --type luks1 failed")
	}
	want := "LUKS1 header: LUKS version 1: not supported (cryptsetup convert --type luks2 converts it)"
	if _, err := ReadHeaderFile(img); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadHeaderFile(LUKS1) = %v, want ErrUnsupported saying %q", err, want)
	}
}

// TestUnsupportedFeatures reproduces issue 11's messages: volumes with
// dm-integrity, a reencryption in progress, a cipher, KDF or KDF cost
// this package lacks read fine (dump works) and each refusal names the
// feature instead of "no valid luks2 header".
func TestUnsupportedFeatures(t *testing.T) {
	for _, tc := range []struct {
		name       string
		edit       func(m map[string]any)
		volume     string // Unsupported(), "" when the volume as a whole is supported
		keyslot    string // KeyslotUsable(0)
		wantUnlock string
	}{
		{"integrity", func(m map[string]any) {
			path(m, "segments", "0")["integrity"] = map[string]any{"type": "hmac(sha256)", "journal_encryption": "none", "journal_integrity": "none"}
		}, "segment 0: dm-integrity (authenticated encryption, hmac(sha256)): not supported", "", "unlock: segment 0: dm-integrity"},
		{"reencryption", func(m map[string]any) {
			path(m, "config")["requirements"] = map[string]any{"mandatory": []string{"online-reencrypt-v2"}}
		}, `online reencryption in progress (mandatory requirement "online-reencrypt-v2"): not supported`, "", "unlock: online reencryption in progress"},
		{"serpent", func(m map[string]any) {
			path(m, "segments", "0")["encryption"] = "serpent-xts-plain64"
			path(m, "keyslots", "0", "area")["encryption"] = "serpent-xts-plain64"
		}, "", `keyslot 0: area: cipher "serpent-xts-plain64": not supported (supported: aes-xts-plain64, aes-xts-plain, aes-cbc-plain64, aes-cbc-plain, aes-cbc-essiv:sha256)`, "unlock: no usable keyslot: keyslot 0: area: cipher"},
		{"scrypt", func(m map[string]any) {
			path(m, "keyslots", "0")["kdf"] = map[string]any{"type": "scrypt", "salt": "AAAA"}
		}, "", `keyslot 0: kdf: kdf type "scrypt": not supported (supported: argon2id, argon2i, pbkdf2)`, "unlock: no usable keyslot"},
		{"argon2 memory", func(m map[string]any) {
			path(m, "keyslots", "0")["kdf"] = map[string]any{"type": "argon2id", "time": 4, "memory": 1 << 30, "cpus": 1, "salt": "AAAA"}
		}, "", "keyslot 0: kdf: argon2id: memory 1073741824 KiB not in 8..4194304: pbkdf parameters beyond limits", "unlock: no usable keyslot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f, h := formatted(t, FormatOptions{})
			rewriteJSON(t, f, h, tc.edit)
			h, err := ReadHeader(f)
			if err != nil || h.Damaged() {
				t.Fatalf("ReadHeader = %v, want the header read", err)
			}
			if got := errString(h.Unsupported()); got != tc.volume {
				t.Errorf("Unsupported() = %q, want %q", got, tc.volume)
			}
			want := tc.keyslot
			if tc.volume != "" {
				want = "keyslot 0: " + tc.volume
			}
			if got := errString(h.KeyslotUsable(0)); got != want {
				t.Errorf("KeyslotUsable(0) = %q, want %q", got, want)
			}
			if _, _, err := h.Unlock(f, []byte("pass")); err == nil || errors.Is(err, ErrWrongPassphrase) || !strings.HasPrefix(err.Error(), tc.wantUnlock) {
				t.Errorf("Unlock = %v, want an error starting %q", err, tc.wantUnlock)
			}
			if tc.volume != "" {
				if _, err := h.AddToken(f, -1, []byte(`{"type":"x","keyslots":[]}`)); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "refusing to modify a volume with "+tc.volume) {
					t.Errorf("AddToken = %v, want a refusal naming %q", err, tc.volume)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestRepairRefusesUnsupported: rewriting (repairing) a header with a
// reencryption keyslot would drop the fields this package does not model;
// Write refuses instead.
func TestRepairRefusesUnsupported(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	rewriteJSON(t, f, h, func(m map[string]any) {
		path(m, "keyslots")["1"] = map[string]any{"type": "reencrypt", "key_size": 1, "mode": "reencrypt", "direction": "forward",
			"area": map[string]any{"type": "none", "offset": "16744448", "size": "8192"}}
	})
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader(reencrypt keyslot) = %v", err)
	}
	want := `keyslot 1: type "reencrypt" (online reencryption): not supported`
	if got := errString(h.KeyslotUsable(1)); got != want {
		t.Errorf("KeyslotUsable(1) = %q, want %q", got, want)
	}
	unlockOK(t, h, f, "pass", 0)
	if err := h.Write(f); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `refusing to modify a volume with keyslot 1 of type "reencrypt"`) {
		t.Errorf("Write(reencrypt keyslot) = %v, want a refusal", err)
	}
}
