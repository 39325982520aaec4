package efivar

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
)

// TestSetClearsImmutable: like efivarfs files, a variable file marked
// immutable (chattr +i) is made writable before Set and Delete (tier 1:
// needs root and a filesystem with inode flags).
func TestSetClearsImmutable(t *testing.T) {
	testenv.RequireRoot(t)
	s := &Dir{Path: t.TempDir()}
	if err := s.Set("Test", GlobalVariable, BootAttributes, []byte("one")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.Path, "Test-"+GlobalVariable.String())
	t.Cleanup(func() { _ = makeMutable(p) }) // let TempDir's cleanup remove it
	if err := setImmutable(p); err != nil {
		t.Skipf("filesystem of %s has no immutable flag: %v", s.Path, err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("WriteFile(immutable) = %v, want a permission error", err)
	}
	if err := s.Set("Test", GlobalVariable, BootAttributes, []byte("two")); err != nil {
		t.Fatalf("Set(immutable variable) = %v", err)
	}
	if _, data, err := s.Get("Test", GlobalVariable); err != nil || string(data) != "two" {
		t.Errorf("Get() = %q, %v, want two", data, err)
	}
	if err := setImmutable(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("Test", GlobalVariable); err != nil {
		t.Errorf("Delete(immutable variable) = %v", err)
	}
}

func setImmutable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFL))
}
