package luks2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// hugeKeyslotsArea rewrites a formatted image's header so that keyslot 0's
// area spans a keyslots area of size bytes.
func hugeKeyslotsArea(t *testing.T, size uint64, imgSize int64) (string, *os.File, *Header) {
	t.Helper()
	img := newImage(t, imgSize)
	f := openFileRW(t, img)
	h, err := Format(f, []byte("pass"), FormatOptions{PBKDF: fastPBKDF["pbkdf2"]})
	if err != nil {
		t.Fatal(err)
	}
	rewriteJSON(t, f, h, func(m map[string]any) {
		path(m, "config")["keyslots_size"] = fmt.Sprint(size)
		path(m, "keyslots", "0", "area")["size"] = fmt.Sprint(size)
	})
	return img, f, h
}

// TestHugeKeyslotsSizeRefused reproduces issue 10: keyslots_size 1 TiB
// passed validation and header-backup, kill-slot and change-key then
// allocated it ("fatal error: out of memory"). Now the header is refused,
// naming cryptsetup's 128 MiB limit.
func TestHugeKeyslotsSizeRefused(t *testing.T) {
	img, f, _ := hugeKeyslotsArea(t, 1<<40, 20<<20)
	want := "keyslots_size 1099511627776 exceeds cryptsetup's maximum 134217728 (128 MiB)"
	if _, err := ReadHeader(f); !errors.Is(err, ErrNoHeader) || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadHeader(keyslots_size 1 TiB) = %v, want ErrNoHeader naming %q", err, want)
	}
	if err := BackupFile(img, filepath.Join(t.TempDir(), "b")); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("BackupFile(keyslots_size 1 TiB) = %v, want %q", err, want)
	}
}

// TestKeyslotsAreaBeyondDevice: a valid 128 MiB keyslots area on a 20 MiB
// image is bounded by the device, not allocated or written past its end.
func TestKeyslotsAreaBeyondDevice(t *testing.T) {
	img, f, _ := hugeKeyslotsArea(t, MaxKeyslotsSize, 20<<20)
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader(128 MiB keyslots area) = %v", err)
	}
	want := "extends past the end of the 20971520-byte device"
	if err := BackupFile(img, filepath.Join(t.TempDir(), "b")); err == nil || !strings.Contains(err.Error(), "header region [0, +134250496) "+want) {
		t.Errorf("BackupFile = %v, want the header region refused: %q", err, want)
	}
	if err := h.KillSlot(f, 0); err == nil || !strings.Contains(err.Error(), "keyslot area [32768, +134217728) "+want) {
		t.Errorf("KillSlot = %v, want the area refused: %q", err, want)
	}
	if st, _ := os.Stat(img); st.Size() != 20<<20 {
		t.Errorf("image grew to %d bytes", st.Size())
	}
}

// TestWipeDoesNotAllocateArea kills a keyslot whose area is 128 MiB (on a
// sparse image large enough): the wipe streams bounded chunks, so the heap
// allocations stay far below the area size.
func TestWipeDoesNotAllocateArea(t *testing.T) {
	img, f, _ := hugeKeyslotsArea(t, MaxKeyslotsSize, 200<<20)
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := h.KillSlot(f, 0); err != nil {
		t.Fatalf("KillSlot(128 MiB area) = %v", err)
	}
	backup := filepath.Join(t.TempDir(), "b")
	if err := BackupFile(img, backup); err != nil {
		t.Fatalf("BackupFile(128 MiB keyslots area) = %v", err)
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("KillSlot + BackupFile of a 128 MiB area allocated %d bytes, want < 8 MiB", got)
	}
	if st, err := os.Stat(backup); err != nil || st.Size() != 2*16384+MaxKeyslotsSize || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, %v; want %d bytes, mode 0600", st, err, 2*16384+MaxKeyslotsSize)
	}
}

// opLog records the writes and syncs of a device.
type opLog struct {
	*os.File
	ops []string
}

func (d *opLog) WriteAt(p []byte, off int64) (int, error) {
	d.ops = append(d.ops, fmt.Sprintf("write %d+%d", off, len(p)))
	return d.File.WriteAt(p, off)
}

func (d *opLog) Sync() error {
	d.ops = append(d.ops, "sync")
	return d.File.Sync()
}

// TestKillSlotOrder reproduces issue 10: kill-slot wrote the new header
// before wiping the keyslot's key material, so a crash in between left
// recoverable key material in an area no header mentions. Now, like
// cryptsetup: wipe the area, sync, then the secondary and primary headers.
func TestKillSlotOrder(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	vk := unlockOK(t, h, f, "pass", 0)
	if _, err := h.AddKey(f, vk, []byte("two"), KeyslotOptions{PBKDF: fastPBKDF["pbkdf2"]}); err != nil {
		t.Fatal(err)
	}
	k := h.Meta.Keyslots["1"]
	d := &opLog{File: f}
	if err := h.KillSlot(d, 1); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("write %d+%d", k.Area.Offset, k.Area.Size), "sync",
		"write 16384+16384", "sync", "write 0+16384", "sync"}
	if strings.Join(d.ops, ", ") != strings.Join(want, ", ") {
		t.Errorf("KillSlot device operations:\n got %q\nwant %q", d.ops, want)
	}
}

// TestKillSlotCrashBeforeHeader crashes KillSlot after the wipe, before the
// header update: the header still lists the keyslot but its material is
// gone (the passphrase no longer opens anything), and the other keyslot
// still opens.
func TestKillSlotCrashBeforeHeader(t *testing.T) {
	_, f, h := formatted(t, FormatOptions{})
	vk := unlockOK(t, h, f, "pass", 0)
	if _, err := h.AddKey(f, vk, []byte("two"), KeyslotOptions{PBKDF: fastPBKDF["pbkdf2"]}); err != nil {
		t.Fatal(err)
	}
	d := &crashDevice{File: f, crashAt: int64(h.MetadataSize())}
	if err := h.KillSlot(d, 1); err == nil {
		t.Fatal("KillSlot on a device crashing at the header write succeeded")
	}
	h2, err := ReadHeader(f)
	if err != nil || h2.Meta.Keyslots["1"] == nil {
		t.Fatalf("ReadHeader after the crash = %v, keyslot 1 present %v; want the old header", err, err == nil && h2.Meta.Keyslots["1"] != nil)
	}
	if _, err := h2.UnlockSlot(f, "1", []byte("two")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("UnlockSlot(1) after a crash past the wipe = %v, want ErrWrongPassphrase (material wiped)", err)
	}
	unlockOK(t, h2, f, "pass", 0)
}
