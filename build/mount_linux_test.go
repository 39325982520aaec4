package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
	"initos/loop"
)

// TestBuildMount: the host kernel mounts the modules image (its squashfs
// part, the verity tree after it ignored) and shows the tree Build's
// reader sees, content included.
func TestBuildMount(t *testing.T) {
	testenv.RequireRoot(t)
	if b, err := os.ReadFile("/proc/filesystems"); err != nil || !containsLine(string(b), "squashfs") {
		testenv.Missing(t, "the host kernel has no squashfs (modprobe squashfs)")
	}
	opts := options(t, writeImage(t, hostLayers(t)...))
	m, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(opts.OutDir, m.ModulesImage.File)
	dev, err := loop.Attach(img, loop.Config{ReadOnly: true, Autoclear: true})
	if err != nil {
		t.Fatalf("loop.Attach(%s): %v", img, err)
	}
	defer dev.Close()
	mnt := t.TempDir()
	if err := unix.Mount(dev.Path, mnt, "squashfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	defer unix.Unmount(mnt, 0)
	want := tree(t, readOut(t, opts.OutDir)[m.ModulesImage.File], m.ModulesImage.DataSize)
	seen := 0
	err = filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		w, ok := want[rel]
		switch {
		case !ok:
			t.Errorf("mounted image has %s, our reader does not", rel)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil || string(b) != w {
				t.Errorf("mounted %s = %q, %v; want %q", rel, b, err, w)
			}
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(want) {
		t.Errorf("mounted image has %d entries, our reader %d", seen, len(want))
	}
}

// containsLine reports whether word is one of the fields of s.
func containsLine(s, word string) bool {
	for _, f := range strings.Fields(s) {
		if f == word {
			return true
		}
	}
	return false
}
