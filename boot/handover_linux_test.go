package boot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
)

// TestOpenInRoot: directories are resolved and created inside the root,
// through relative and absolute symlinks alike (merged /usr), never
// outside it.
func TestOpenInRoot(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	os.Symlink("/usr/lib", filepath.Join(root, "lib64")) // absolute: still inside
	os.Symlink(outside, filepath.Join(root, "escape"))   // points outside the root
	tests := []struct{ dir, want string }{
		{"/lib/modules/test-release", "usr/lib/modules/test-release"},
		{"/lib64/firmware", "usr/lib/firmware"},
		{"/dev", "dev"},
	}
	for _, tt := range tests {
		fd, err := openInRoot(root, tt.dir, true)
		if err != nil {
			t.Errorf("openInRoot(%s) = %v", tt.dir, err)
			continue
		}
		got, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		unix.Close(fd)
		if want := filepath.Join(root, tt.want); got != want {
			t.Errorf("openInRoot(%s) opened %s, want %s", tt.dir, got, want)
		}
	}
	// Through a symlink pointing outside, the path is re-rooted inside the
	// root, where it does not exist: an error, and nothing made outside.
	if fd, err := openInRoot(root, "/escape/x", true); err == nil {
		unix.Close(fd)
		t.Errorf("openInRoot(/escape/x) succeeded")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("openInRoot created %v outside the root", ents)
	}
	if _, err := openInRoot(root, "/nope", false); err == nil {
		t.Errorf("openInRoot(missing, no create) succeeded")
	}
}

// TestBindInto (tier 1): the modules directory is bound into the root at
// a path resolved inside it.
func TestBindInto(t *testing.T) {
	testenv.RequireRoot(t)
	src, root := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(src, "modules.dep"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.Symlink("/usr/lib", filepath.Join(root, "lib"))
	if err := bindInto(src, root, "/lib/modules/test-release"); err != nil {
		t.Fatalf("bindInto = %v", err)
	}
	dst := filepath.Join(root, "usr/lib/modules/test-release")
	defer unix.Unmount(dst, unix.MNT_DETACH)
	if b, err := os.ReadFile(filepath.Join(dst, "modules.dep")); err != nil || string(b) != "x" {
		t.Errorf("bound modules.dep = %q, %v", b, err)
	}
}

// TestCheckInitramfs: switch_root deletes only a ramfs or tmpfs root,
// never a disk's filesystem.
func TestCheckInitramfs(t *testing.T) {
	for fsType, ok := range map[int64]bool{ramfsMagic: true, tmpfsMagic: true, 0xef53: false, 0x9123683e: false} {
		err := checkInitramfs("/", fsType)
		if (err == nil) != ok || (err != nil && !strings.Contains(err.Error(), "/ is not an initramfs")) {
			t.Errorf("checkInitramfs(%#x) = %v, want ok %v", fsType, err, ok)
		}
	}
}
