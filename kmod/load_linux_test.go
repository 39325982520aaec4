package kmod

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The loading syscalls are exercised in the VM (vm_guest_test.go): the
// host kernel is not the target and must not be touched.

func TestLoadErr(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{unix.EEXIST, ""},
		{unix.ENOEXEC, "load module /m.ko: finit_module: ENOEXEC (exec format error)"},
		{unix.ENOENT, "load module /m.ko: finit_module: ENOENT (no such file or directory)"},
		{errors.New("other"), "load module /m.ko: finit_module: other"},
	}
	for _, tt := range tests {
		err := loadErr("/m.ko", "finit_module", tt.err)
		if got := errString(err); got != tt.want {
			t.Errorf("loadErr(%v) = %q, want %q", tt.err, got, tt.want)
		}
		if tt.want != "" && !errors.Is(err, tt.err) {
			t.Errorf("loadErr(%v) does not wrap it", tt.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLoadMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "missing.ko.zst")
	if err := Load(p, ""); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "load module "+p) {
		t.Errorf("Load(%s) = %v, want fs.ErrNotExist naming the file", p, err)
	}
}

func TestLoadAllResolveError(t *testing.T) {
	ix := openSynthetic(t)
	if err := ix.LoadAll("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LoadAll(nope) = %v, want ErrNotFound", err)
	}
	// Built-in modules are skipped: nothing is loaded, no error.
	if err := ix.LoadAll("sha-thing", "built-in-one"); err != nil {
		t.Errorf("LoadAll(built-ins) = %v, want nil", err)
	}
}
