package luks2

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// cryptsetupHashes are the --hash values cryptsetup 2.6.1 (OpenSSL
// backend) accepts for luksAddKey; want is whether we support them.
var cryptsetupHashes = []struct {
	name string
	want bool
}{
	{"sha1", true}, {"sha224", true}, {"sha256", true}, {"sha384", true}, {"sha512", true},
	{"sha512-224", true}, {"sha3-224", true}, {"sha3-256", true}, {"sha3-384", true}, {"sha3-512", true},
	{"blake2b-512", true}, {"blake2s-256", true}, {"ripemd160", true},
	{"whirlpool", false}, {"sm3", false},
}

// TestCryptsetupKeyslotHashes reproduces issue 11: one keyslot whose
// PBKDF2 hash we did not support (cryptsetup luksAddKey --hash sha384)
// made the whole header invalid ("no valid luks2 header ... secondary: not
// found"). cryptsetup adds a keyslot per hash; every supported one opens
// with cryptsetup's volume key, the others are reported unusable with
// their hash named, and the volume stays usable.
func TestCryptsetupKeyslotHashes(t *testing.T) {
	img := newImage(t, 20<<20)
	if _, ok := cryptsetup(t, append([]string{"luksFormat", "--type", "luks2", "--key-file", keyFile(t, "first"), img}, pbkdfArgs(fastPBKDF["pbkdf2"])...)...); !ok {
		t.Fatal("cryptsetup luksFormat failed")
	}
	for _, hh := range cryptsetupHashes {
		args := append([]string{"luksAddKey", "--hash", hh.name, "--key-file", keyFile(t, "first"), img, keyFile(t, "k-"+hh.name)}, pbkdfArgs(fastPBKDF["pbkdf2"])...)
		if _, ok := cryptsetup(t, args...); !ok {
			t.Fatalf("cryptsetup luksAddKey --hash %s failed", hh.name)
		}
	}
	want := dumpVolumeKey(t, img, keyFile(t, "first"))
	f := openFileRW(t, img)
	h, err := ReadHeader(f)
	if err != nil || h.Damaged() {
		t.Fatalf("ReadHeader(keyslots with %d hashes) = %v, damaged %v", len(cryptsetupHashes), err, err == nil && h.Damaged())
	}
	for i, hh := range cryptsetupHashes {
		id := i + 1
		err := h.KeyslotUsable(id)
		if hh.want {
			vk, err := h.UnlockSlot(f, strconv.Itoa(id), []byte("k-"+hh.name))
			if err != nil || !bytes.Equal(vk.Bytes(), want) {
				t.Errorf("UnlockSlot(%d, --hash %s) = %v, key match %v", id, hh.name, err, err == nil && bytes.Equal(vk.Bytes(), want))
			}
			vk.Destroy()
			continue
		}
		msg := `keyslot ` + strconv.Itoa(id) + `: anti-forensic splitter: hash "` + hh.name + `": not supported`
		if !errors.Is(err, ErrUnsupported) || err.Error() != msg {
			t.Errorf("KeyslotUsable(%d, --hash %s) = %v, want %q", id, hh.name, err, msg)
		}
		_, _, err = h.Unlock(f, []byte("k-"+hh.name))
		if !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "not tried: ") || !strings.Contains(err.Error(), msg) {
			t.Errorf("Unlock(passphrase of the --hash %s keyslot) = %v, want ErrWrongPassphrase naming %q", hh.name, err, msg)
		}
	}
	vk, slot, err := h.Unlock(f, []byte("first"))
	if err != nil || slot != 0 {
		t.Errorf("Unlock(first) = slot %d, %v", slot, err)
	}
	vk.Destroy()
}

// TestCryptsetupNoUsableKeyslot: a volume whose only keyslot and digest
// use an unsupported hash reads fine; unlocking says no keyslot is usable
// and why, not "wrong passphrase".
func TestCryptsetupNoUsableKeyslot(t *testing.T) {
	img := newImage(t, 20<<20)
	if _, ok := cryptsetup(t, append([]string{"luksFormat", "--type", "luks2", "--hash", "whirlpool", "--key-file", keyFile(t, "k"), img}, pbkdfArgs(fastPBKDF["pbkdf2"])...)...); !ok {
		t.Fatal("cryptsetup luksFormat --hash whirlpool failed")
	}
	f := openFileRW(t, img)
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader(--hash whirlpool) = %v", err)
	}
	_, _, err = h.Unlock(f, []byte("k"))
	want := `unlock: no usable keyslot: keyslot 0: anti-forensic splitter: hash "whirlpool": not supported`
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrWrongPassphrase) || err.Error() != want {
		t.Errorf("Unlock(--hash whirlpool volume) = %v, want %q", err, want)
	}
}

// TestOursKeyslotHashes adds keyslots with every hash both cryptsetup
// and this package support (pbkdf2 with that hash, and argon2id whose
// splitter uses it), and formats with one; cryptsetup opens each.
func TestOursKeyslotHashes(t *testing.T) {
	img := newImage(t, 20<<20)
	f := openFileRW(t, img)
	h, err := Format(f, []byte("first"), FormatOptions{PBKDF: PBKDF{Type: "pbkdf2", Hash: "sha384", Iterations: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if dg := h.Meta.Digests["0"]; dg.Hash != "sha384" || len(dg.Digest) != 48 || h.Meta.Keyslots["0"].AF.Hash != "sha384" {
		t.Errorf("Format(--hash sha384): digest %s %d bytes, af %s; want sha384, 48 bytes, sha384", dg.Hash, len(dg.Digest), h.Meta.Keyslots["0"].AF.Hash)
	}
	vk := unlockOK(t, h, f, "first", 0)
	n := 0
	for _, hh := range cryptsetupHashes {
		if !hh.want {
			continue
		}
		p := PBKDF{Type: "pbkdf2", Hash: hh.name, Iterations: 1000}
		if n%2 == 1 {
			p = PBKDF{Type: "argon2id", Hash: hh.name, Memory: 32, Parallel: 1, Iterations: 4}
		}
		n++
		id, err := h.AddKey(f, vk, []byte("k-"+hh.name), KeyslotOptions{PBKDF: p})
		if err != nil {
			t.Fatalf("AddKey(%+v) = %v", p, err)
		}
		if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-slot", strconv.Itoa(id), "--key-file", keyFile(t, "k-"+hh.name), img); !ok {
			t.Errorf("cryptsetup rejects our keyslot %d with %s %s", id, p.Type, hh.name)
		}
	}
	if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-slot", "0", "--key-file", keyFile(t, "first"), img); !ok {
		t.Errorf("cryptsetup rejects our --hash sha384 format")
	}
}
