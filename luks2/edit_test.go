package luks2

import (
	"bytes"
	"errors"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func unlockOK(t *testing.T, h *Header, f *os.File, pass string, wantSlot int) []byte {
	t.Helper()
	vk, slot, err := h.Unlock(f, []byte(pass))
	if err != nil || slot != wantSlot {
		t.Fatalf("Unlock(%q) = slot %d, %v, want slot %d", pass, slot, err, wantSlot)
	}
	defer vk.Destroy()
	return bytes.Clone(vk.Bytes())
}

func TestKeyslotLifecycle(t *testing.T) {
	img, f, h := formatted(t, FormatOptions{})
	vk := unlockOK(t, h, f, "pass", 0)
	fast := KeyslotOptions{PBKDF: fastPBKDF["argon2id"]}
	if id, err := h.AddKey(f, vk, []byte("second"), fast); err != nil || id != 1 {
		t.Fatalf("AddKey = %d, %v", id, err)
	}
	if _, err := h.AddKey(f, make([]byte, len(vk)), []byte("x"), fast); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("AddKey(wrong volume key) = %v, want ErrWrongPassphrase", err)
	}
	if id, err := h.ChangeKey(f, []byte("second"), []byte("third"), fast); err != nil || id != 1 {
		t.Fatalf("ChangeKey = %d, %v", id, err)
	}
	if _, _, err := h.Unlock(f, []byte("second")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Unlock(old passphrase) = %v, want ErrWrongPassphrase", err)
	}
	if got := unlockOK(t, h, f, "third", 1); !bytes.Equal(got, vk) {
		t.Errorf("volume key changed after ChangeKey")
	}
	if id, err := h.RemoveKey(f, []byte("pass")); err != nil || id != 0 {
		t.Fatalf("RemoveKey = %d, %v", id, err)
	}
	h2, err := ReadHeader(f)
	if err != nil || len(h2.Meta.Keyslots) != 1 || h2.Meta.Keyslots["1"] == nil {
		t.Fatalf("ReadHeader after edits = %v, keyslots %v", err, h2.Meta.Keyslots)
	}
	if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, "third"), img); !ok {
		t.Errorf("cryptsetup rejects the changed key")
	}
	if err := h.KillSlot(f, 5); err == nil {
		t.Errorf("KillSlot(5) on a missing keyslot succeeded")
	}
}

func TestPriorityOrder(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	vk := unlockOK(t, h, f, "pass", 0)
	high, ignore := 2, 0
	if _, err := h.AddKey(f, vk, []byte("pass"), KeyslotOptions{PBKDF: fastPBKDF["pbkdf2"], Priority: &high}); err != nil {
		t.Fatal(err)
	}
	unlockOK(t, h, f, "pass", 1)
	if _, err := h.AddKey(f, vk, []byte("ign"), KeyslotOptions{PBKDF: fastPBKDF["pbkdf2"], Priority: &ignore}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Unlock(f, []byte("ign")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Unlock(priority-0 keyslot) = %v, want ErrWrongPassphrase", err)
	}
}

func TestBackupRestore(t *testing.T) {
	img, f, h := formatted(t, FormatOptions{})
	backup := filepath.Join(t.TempDir(), "hdr.bak")
	if err := BackupFile(img, backup); err != nil {
		t.Fatal(err)
	}
	if err := BackupFile(img, backup); err == nil {
		t.Errorf("BackupFile over an existing file succeeded")
	}
	if _, err := h.RemoveKey(f, []byte("pass")); err != nil {
		t.Fatal(err)
	}
	corrupt(t, f, 300)
	if err := RestoreFile(backup, img, false); err != nil {
		t.Fatalf("RestoreFile = %v", err)
	}
	h2, err := ReadHeaderFile(img)
	if err != nil || h2.Damaged() {
		t.Fatalf("ReadHeaderFile(restored) = %v", err)
	}
	unlockOK(t, h2, f, "pass", 0)
	if _, ok := cryptsetup(t, "luksHeaderRestore", "--header-backup-file", backup, img); !ok {
		t.Errorf("cryptsetup rejects our header backup")
	}
	other, _, _ := formatted(t, FormatOptions{})
	if err := RestoreFile(backup, other, false); err == nil {
		t.Errorf("RestoreFile onto a different UUID succeeded without force")
	}
}

func TestDetachedHeader(t *testing.T) {
	dir := t.TempDir()
	hdr, data := filepath.Join(dir, "hdr"), newImage(t, 8<<20)
	h, err := FormatFile(hdr, 0, []byte("pass"), FormatOptions{Detached: true, PBKDF: fastPBKDF["pbkdf2"], UUID: "12345678-1234-4234-8234-123456789abc"})
	if err != nil {
		t.Fatalf("FormatFile(detached) = %v", err)
	}
	if h.Meta.Segments["0"].Offset != 0 || h.UUID() != "12345678-1234-4234-8234-123456789abc" {
		t.Errorf("detached header: segment offset %d uuid %s", h.Meta.Segments["0"].Offset, h.UUID())
	}
	if _, ok := cryptsetup(t, "open", "--test-passphrase", "--header", hdr, "--key-file", keyFile(t, "pass"), data); !ok {
		t.Errorf("cryptsetup rejects our detached header")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("FormatFile left %d files, want 1", len(entries))
	}
	if _, err := FormatFile(filepath.Join(dir, "bad"), 0, []byte("p"), FormatOptions{Cipher: "rot13"}); err == nil {
		t.Errorf("FormatFile(bad cipher) succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("failed FormatFile left %d files, want 1", len(entries))
	}
}

func TestFormatOptionErrors(t *testing.T) {
	for _, o := range []FormatOptions{
		{KeySize: 384},
		{Cipher: "aes-cbc-essiv:sha256", KeySize: 512},
		{SectorSize: 3000},
		{MetadataSize: 8 << 10},
		{DataOffset: 4096},
		{UUID: "nope"},
		{Label: string(make([]byte, 48))},
		{PBKDF: PBKDF{Type: "scrypt"}},
		{PBKDF: PBKDF{Type: "pbkdf2", Hash: "md5", Iterations: 1000}},
		{PBKDF: PBKDF{Type: "argon2id", Memory: MaxArgon2Memory + 1, Iterations: 4}},
		{PBKDF: PBKDF{Type: "argon2i", Memory: 64, Parallel: MaxArgon2Parallel + 1}},
		{PBKDF: PBKDF{Type: "argon2id", Memory: 64, Iterations: MaxArgon2Time + 1}},
	} {
		// A refused format leaves the volume already on the device intact.
		img, _, _ := formatted(t, FormatOptions{})
		if _, err := FormatFile(img, 0, []byte("p"), o); err == nil {
			t.Errorf("FormatFile(%+v) succeeded", o)
		}
		h, err := ReadHeaderFile(img)
		if err != nil {
			t.Errorf("ReadHeaderFile after refused FormatFile(%+v) = %v, want the old header", o, err)
			continue
		}
		f := openFileRW(t, img)
		if _, _, err := h.Unlock(f, []byte("pass")); err != nil {
			t.Errorf("Unlock after refused FormatFile(%+v) = %v, want the old volume", o, err)
		}
	}
	if _, err := FormatFile(filepath.Join(t.TempDir(), "missing"), 0, []byte("p"), FormatOptions{PBKDF: fastPBKDF["pbkdf2"]}); err == nil {
		t.Errorf("FormatFile(missing device, not detached) succeeded")
	}
	small := newImage(t, 1<<20)
	if _, err := FormatFile(small, 0, []byte("p"), FormatOptions{PBKDF: fastPBKDF["pbkdf2"]}); err == nil {
		t.Errorf("FormatFile(1 MiB device) succeeded")
	}
}

func TestAFRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdefXYZ")
	for _, hash := range []string{"sha1", "sha256", "sha512"} {
		split := make([]byte, len(key)*10)
		if err := afSplit(split, key, 10, hash, nil); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(key))
		if err := afMerge(got, split, 10, hash); err != nil || !bytes.Equal(got, key) {
			t.Errorf("afMerge(afSplit(key), %s) = %q, %v", hash, got, err)
		}
	}
}

func TestSecret(t *testing.T) {
	s := SecretFrom([]byte("key"))
	if string(s.Bytes()) != "key" || s.Len() != 3 {
		t.Errorf("SecretFrom = %q", s.Bytes())
	}
	s.Destroy()
	s.Destroy()
	if s.Bytes() != nil {
		t.Errorf("Bytes after Destroy = %v", s.Bytes())
	}
}

func TestPBKDFBenchmark(t *testing.T) {
	k, err := PBKDF{Type: "pbkdf2", IterTime: 20e6}.kdfFor(t.Context(), 32, nil)
	if err != nil || k.Iterations < MinPBKDF2Iterations {
		t.Errorf("kdfFor(pbkdf2 20ms) = %+v, %v", k, err)
	}
}

func TestRecoveryKey(t *testing.T) {
	img, f, h := formatted(t, FormatOptions{})
	vk := unlockOK(t, h, f, "pass", 0)
	key, id, err := h.AddRecoveryKey(f, vk, nil)
	if err != nil || id != 1 || len(key) != 64+7 || strings.Trim(key, modhex+"-") != "" {
		t.Fatalf("AddRecoveryKey = %q, %d, %v", key, id, err)
	}
	if _, ok := cryptsetup(t, "open", "--test-passphrase", "--key-file", keyFile(t, key), img); !ok {
		t.Errorf("cryptsetup rejects the recovery key")
	}
	if ids, toks := h.Tokens(); len(ids) != 1 || toks[0].Type != "systemd-recovery" || toks[0].Keyslots[0] != "1" {
		t.Errorf("Tokens() = %v %+v", ids, toks)
	}
	unlockOK(t, h, f, key, 1)
}

// TestRestoreCryptsetupBackup restores a cryptsetup luksHeaderBackup file
// with our code over a wiped header.
func TestRestoreCryptsetupBackup(t *testing.T) {
	img := newImage(t, 20<<20)
	args := append([]string{"luksFormat", "--type", "luks2", "--key-file", keyFile(t, "k")}, pbkdfArgs(fastPBKDF["argon2id"])...)
	if _, ok := cryptsetup(t, append(args, img)...); !ok {
		t.Fatal("cryptsetup luksFormat failed")
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if _, ok := cryptsetup(t, "luksHeaderBackup", "--header-backup-file", backup, img); !ok {
		t.Fatal("cryptsetup luksHeaderBackup failed")
	}
	f := openFileRW(t, img)
	if _, err := f.WriteAt(make([]byte, 64<<10), 0); err != nil {
		t.Fatal(err)
	}
	if err := RestoreFile(backup, img, false); err != nil {
		t.Fatalf("RestoreFile(cryptsetup backup) = %v", err)
	}
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	unlockOK(t, h, f, "k", 0)
}

// TestFormatDeterministic formats twice with the same seeded randomness
// and forced PBKDF costs: the images are byte-identical.
func TestFormatDeterministic(t *testing.T) {
	var imgs [2][]byte
	for i := range imgs {
		dev := &memDevice{}
		o := FormatOptions{PBKDF: fastPBKDF["argon2id"], Rand: mathrand.NewChaCha8([32]byte{1}), DataOffset: 1 << 20, KeyslotsSize: 512 << 10}
		if _, err := Format(dev, []byte("p"), o); err != nil {
			t.Fatal(err)
		}
		imgs[i] = dev.b
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Errorf("Format with the same randomness differs between runs")
	}
}
