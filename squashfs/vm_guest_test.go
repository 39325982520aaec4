//go:build vmguest

package squashfs

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"initos/dm"
	"initos/verity"
)

// guestVerity opens disk's image through dm-verity as a read-only device
// named name and returns its node and the tree.
func guestVerity(t *testing.T, disk, name string) (string, *verity.Result) {
	t.Helper()
	b, err := os.ReadFile(vmParamsPath)
	if err != nil {
		t.Fatal(err)
	}
	var p vmParams
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := verity.ReadSuperblock(f, p.HashOffset)
	if err != nil {
		t.Fatalf("verity.ReadSuperblock(%s): %v", disk, err)
	}
	root, _ := hex.DecodeString(p.RootHash)
	r, err := sb.Result(p.HashOffset, root)
	if err != nil {
		t.Fatal(err)
	}
	v := dm.Verity{DataDevice: disk, HashDevice: disk, DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize,
		DataBlocks: r.DataBlocks, HashStartBlock: r.HashStartBlock, Algorithm: r.Hash, RootDigest: r.RootHash,
		Salt: r.Salt, OnCorruption: dm.CorruptionEIO}
	node, err := dm.CreateDevice(name, "", true, v)
	if err != nil {
		t.Fatalf("dm.CreateDevice(%s verity over %s): %v", name, disk, err)
	}
	t.Cleanup(func() {
		if err := dm.RemoveDevice(name); err != nil {
			t.Errorf("RemoveDevice(%s): %v", name, err)
		}
	})
	return node, r
}

// guestMount mounts a squashfs device read-only.
func guestMount(t *testing.T, dev string) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount(dev, mnt, "squashfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount -t squashfs %s: %v", dev, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	return mnt
}

// TestGuestVerityMount: the kernel mounts the image through dm-verity and
// shows exactly the tree our Reader reads from the raw disk.
func TestGuestVerityMount(t *testing.T) {
	node, r := guestVerity(t, "/dev/vda", "sqfs-good")
	mnt := guestMount(t, node)
	img := make([]byte, r.DataSize())
	f, err := os.Open("/dev/vda")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, img); err != nil {
		t.Fatal(err)
	}
	want := readBack(t, img)
	got := scanHost(t, mnt)
	dropUnsupported(got)
	compareTrees(t, want, got)
	if len(got) < 30 {
		t.Errorf("mounted tree has %d entries, want the whole sample tree", len(got))
	}
}

// TestGuestVerityCorruption: with one bit flipped inside a file's data,
// the image still mounts, reading that file fails with EIO, and every
// other read either succeeds or fails with EIO (a neighbour sharing the
// corrupt 4 KiB block).
func TestGuestVerityCorruption(t *testing.T) {
	b, _ := os.ReadFile(vmParamsPath)
	var p vmParams
	json.Unmarshal(b, &p)
	node, _ := guestVerity(t, "/dev/vdb", "sqfs-bad")
	mnt := guestMount(t, node)
	if _, err := os.ReadFile(filepath.Join(mnt, p.RawFile)); !errors.Is(err, unix.EIO) {
		t.Errorf("read %s with a flipped bit = %v, want EIO", p.RawFile, err)
	}
	ok := 0
	filepath.WalkDir(mnt, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", path, err)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, err := os.ReadFile(path); err == nil {
			ok++
		} else if !errors.Is(err, unix.EIO) {
			t.Errorf("read %s: %v, want success or EIO", path, err)
		}
		return nil
	})
	if ok < 10 {
		t.Errorf("%d files readable, want all but the corrupt block's", ok)
	}
}

// TestGuestEmptyImage: Debian's kernel mounts an image whose directory
// table is empty.
func TestGuestEmptyImage(t *testing.T) {
	mnt := guestMount(t, "/dev/vdc")
	ents, err := os.ReadDir(mnt)
	if err != nil || len(ents) != 0 {
		t.Errorf("ReadDir(empty image) = %v, %v; want no entries", ents, err)
	}
}
