package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStoreDirsPrivate: the store's directories are 0700, so another user
// can reach neither the set-id binaries nor the device nodes of an image
// (issue 10 §4). A store made by an older version (0755) is tightened.
func TestStoreDirsPrivate(t *testing.T) {
	s, mnt := newStore(t)
	img := imageOf(t, layerOf(t, []ent{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/suid", body: "#!/bin/sh\n", mode: 0o4755},
		{name: "dev/", typ: tar.TypeDir},
		{name: "dev/sda", typ: tar.TypeBlock, mode: 0o666, major: 8},
	}))
	im, _, err := s.Install(context.Background(), img, "suid:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "layers", "images", "roots"} {
		if m := modeOf(t, filepath.Join(s.Dir, d)); m != 0o700 {
			t.Errorf("mode of store directory %q = %#o, want 0700", d, m)
		}
	}
	// Let "nobody" walk down to the store, then try to reach the image.
	for d := mnt; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	for _, p := range []string{"bin/suid", "dev/sda"} {
		cmd := exec.Command("/bin/ls", "-l", filepath.Join(im.Path, p))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("ls %s as nobody = %q, %v, want Permission denied", p, out, err)
		}
	}

	// An existing store with wide directories is made private on open.
	old := filepath.Join(mnt, "old")
	for _, d := range []string{"layers", "images", "roots"} {
		if err := os.MkdirAll(filepath.Join(old, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(old); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"layers", "images", "roots"} {
		if m := modeOf(t, filepath.Join(old, d)); m != 0o700 {
			t.Errorf("Open(store with 0755 dirs): %s mode = %#o, want 0700", d, m)
		}
	}
}

func modeOf(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestChmodNoFollow: changing the mode of a name never changes what a
// symbolic link of that name points to (issue 10 §4: Fchmodat followed
// symlinks), through fchmodat2 and through the O_PATH fallback.
func TestChmodNoFollow(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		dir := t.TempDir()
		target := filepath.Join(t.TempDir(), "target")
		if err := os.WriteFile(target, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
			t.Fatal(err)
		}
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dfd)
		chmod := chmodNoFollow
		if fallback {
			chmod = chmodByPathFD
		}
		if err := chmod(dfd, "link", 0o4777); err == nil {
			t.Errorf("chmodNoFollow(symlink, fallback=%t) = nil, want an error", fallback)
		}
		if m := modeOf(t, target); m != 0o644 {
			t.Errorf("chmodNoFollow(symlink, fallback=%t) changed the target's mode to %#o", fallback, m)
		}
		if err := chmod(dfd, "fifo", 0o640); err != nil {
			t.Errorf("chmodNoFollow(fifo, fallback=%t) = %v", fallback, err)
		}
		if m := modeOf(t, filepath.Join(dir, "fifo")); m != 0o640 {
			t.Errorf("chmodNoFollow(fifo, fallback=%t): mode %#o, want 0640", fallback, m)
		}
	}
}

// TestOpenExistingDoesNotCreate: reading verbs open a store without
// making it (issue 10 §4: `image list --store /typo` created /typo).
func TestOpenExistingDoesNotCreate(t *testing.T) {
	_, mnt := newStore(t)
	typo := filepath.Join(mnt, "typo")
	_, err := OpenExisting(typo)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), typo) {
		t.Errorf("OpenExisting(%s) = %v, want a not-exist error naming it", typo, err)
	}
	if _, err := os.Lstat(typo); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenExisting(%s) created it: %v", typo, err)
	}
	plain := filepath.Join(mnt, "plain")
	os.Mkdir(plain, 0o755)
	if _, err := OpenExisting(plain); err == nil || !strings.Contains(err.Error(), "not an image store") {
		t.Errorf("OpenExisting(empty directory) = %v, want not an image store", err)
	}
	if ents, _ := os.ReadDir(plain); len(ents) != 0 {
		t.Errorf("OpenExisting(empty directory) wrote %d entries into it", len(ents))
	}
}

// TestRemoveHexName: removing the name "1" removes that name only, even
// when the image's digest starts with 1 (issue 10 §4: every name of the
// image went).
func TestRemoveHexName(t *testing.T) {
	s, _ := newStore(t)
	img := imageOf(t, layerOf(t, []ent{{name: "f", body: "f"}}))
	d, _ := img.Digest()
	short := d.Hex[:1] // a name that is also a digest prefix
	if _, _, err := s.Install(context.Background(), img, short, "app:1", d.Hex[:12]); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{short, d.Hex[:12]} {
		if err := s.Remove(name); err != nil {
			t.Fatalf("Remove(%q) = %v", name, err)
		}
		if _, err := s.Get("app:1"); err != nil {
			t.Errorf("after Remove(%q): Get(app:1) = %v, want the image kept under its other name", name, err)
		}
		if _, err := s.Get(name); !errors.Is(err, ErrNotFound) && name == short {
			t.Errorf("after Remove(%q): Get(%q) = %v, want ErrNotFound", name, name, err)
		}
	}
	im, err := s.Get("app:1")
	if err != nil || strings.Join(im.Names, ",") != "app:1" {
		t.Errorf("Get(app:1) = %v, %v, want names [app:1]", im.Names, err)
	}
	// A digest removes the image with all its names.
	if err := s.Remove(d.String()); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("after Remove(digest): List() = %v, want empty", list)
	}
}
