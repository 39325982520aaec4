package squashfs

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
	"initos/loop"
)

// TestKernelMount: the host kernel mounts our images (loop device,
// read-only) and shows the source tree: content, modes, owners, mtimes,
// xattrs, symlinks, hard links (link counts) and device numbers.
func TestKernelMount(t *testing.T) {
	testenv.RequireRoot(t)
	if !kernelHasSquashfs() {
		testenv.Missing(t, "the host kernel has no squashfs (modprobe squashfs)")
	}
	src := filepath.Join(t.TempDir(), "src")
	materialize(t, src, oracleTree(DefaultBlockSize))
	want := scanHost(t, src)
	dropUnsupported(want)
	for _, bs := range []int{MinBlockSize, DefaultBlockSize, MaxBlockSize} {
		for _, c := range []Compressor{Zstd, Gzip, XZ, LZ4} {
			if c == XZ && bs == MaxBlockSize {
				continue // ulikunitz/xz is too slow at 1 MiB for a test this size
			}
			t.Run(c.String()+"/"+itoa(bs), func(t *testing.T) {
				img := filepath.Join(t.TempDir(), "img.sqfs")
				buildDir(t, src, img, Options{Compressor: c, BlockSize: bs, Exportable: c == Zstd})
				mnt := mountImage(t, img)
				compareTrees(t, want, scanHost(t, mnt))
			})
		}
	}
}

// mountImage mounts a squashfs image read-only on a loop device for the
// test's duration.
func mountImage(t testing.TB, img string) string {
	t.Helper()
	dev, err := loop.Attach(img, loop.Config{ReadOnly: true, Autoclear: true})
	if err != nil {
		t.Fatalf("loop.Attach(%s): %v", img, err)
	}
	mnt := t.TempDir()
	if err := unix.Mount(dev.Path, mnt, "squashfs", unix.MS_RDONLY, ""); err != nil {
		dev.Detach()
		dev.Close()
		t.Fatalf("mount %s (%s): %v", img, dev.Path, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		dev.Close()
	})
	return mnt
}

// TestKernelMountEmpty: an image of an empty directory (an empty
// directory table) mounts.
func TestKernelMountEmpty(t *testing.T) {
	testenv.RequireRoot(t)
	if !kernelHasSquashfs() {
		testenv.Missing(t, "the host kernel has no squashfs (modprobe squashfs)")
	}
	img := filepath.Join(t.TempDir(), "empty.sqfs")
	buildDir(t, t.TempDir(), img, Options{})
	mnt := mountImage(t, img)
	if got := scanHost(t, mnt); len(got) != 1 {
		t.Errorf("empty image mounted with %d entries, want only the root", len(got))
	}
}
