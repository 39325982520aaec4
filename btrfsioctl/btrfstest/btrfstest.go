package btrfstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"initos/internal/testenv"
)

// Mount creates a btrfs filesystem of sizeMB MiB (at least 256) and
// returns the directory where its top level is mounted. It skips the test
// unless running as root with mkfs.btrfs available.
func Mount(t testing.TB, sizeMB int64) string {
	t.Helper()
	testenv.RequireRoot(t)
	mkfs := testenv.Tool(t, "mkfs.btrfs")
	if sizeMB < 256 {
		sizeMB = 256
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(mkfs, "-q", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs %s: %v\n%s", img, err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount -o loop %s: %v\n%s", img, err, out)
	}
	t.Cleanup(func() { Unmount(t, mnt) })
	return mnt
}

// Unmount unmounts mnt, retrying briefly while it is busy.
func Unmount(t testing.TB, mnt string) {
	t.Helper()
	var out []byte
	var err error
	for i := 0; i < 50; i++ {
		if out, err = exec.Command("umount", mnt).CombinedOutput(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("umount %s: %v\n%s", mnt, err, out)
}
