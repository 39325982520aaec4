//go:build vmguest

package kmod

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// guestModulesDir is the guest kernel's module directory, which the
// harness fills with the index files and the modules of Config.ExtraModules.
// In the guest the running kernel is the target, so uname is right here
// (and only here).
func guestModulesDir(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
}

// loadedModules returns the names in /proc/modules.
func loadedModules(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]bool)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			m[f[0]] = true
		}
	}
	return m
}

func TestGuestLoadAll(t *testing.T) {
	ix, err := Open(guestModulesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"dm-verity", "dm-crypt", "btrfs", "squashfs", "vfat"}
	mods, err := ix.Resolve(names...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.LoadAll(names...); err != nil {
		t.Fatalf("LoadAll(%q): %v", names, err)
	}
	loaded := loadedModules(t)
	for _, m := range mods {
		if _, err := os.Stat(filepath.Join("/sys/module", m.Name)); err != nil && !m.Optional {
			t.Errorf("after LoadAll: /sys/module/%s: %v", m.Name, err)
		}
		if !m.Builtin && !m.Optional && !loaded[m.Name] {
			t.Errorf("after LoadAll: %s not in /proc/modules", m.Name)
		}
	}
	// Everything is loaded now: loading again is EEXIST, which is no error.
	if err := ix.LoadAll(names...); err != nil {
		t.Errorf("LoadAll(%q) again: %v", names, err)
	}
	for _, fs := range []string{"btrfs", "squashfs", "vfat"} {
		if data, _ := os.ReadFile("/proc/filesystems"); !bytes.Contains(data, []byte("\t"+fs+"\n")) {
			t.Errorf("after LoadAll: %s not in /proc/filesystems", fs)
		}
	}
}

// TestGuestLoadAlternatives loads crypto-aes, an alias of aesni_intel
// and padlock_aes: padlock_aes fails (ENODEV, no VIA CPU), which is fine
// as long as one alternative loads.
func TestGuestLoadAlternatives(t *testing.T) {
	ix, err := Open(guestModulesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.LoadAll("crypto-aes"); err != nil {
		t.Fatalf("LoadAll(crypto-aes): %v", err)
	}
	loaded := loadedModules(t)
	t.Logf("aesni_intel loaded: %v, padlock_aes loaded: %v", loaded["aesni_intel"], loaded["padlock_aes"])
	if !loaded["aesni_intel"] && !loaded["padlock_aes"] {
		t.Errorf("after LoadAll(crypto-aes): neither aesni_intel nor padlock_aes in /proc/modules")
	}
}

// TestGuestLoadCompressed compresses real modules and loads them: on 6.1
// finit_module rejects MODULE_INIT_COMPRESSED_FILE, so this takes the
// in-memory decompression path.
func TestGuestLoadCompressed(t *testing.T) {
	dir := guestModulesDir(t)
	tests := []struct {
		module, path, ext string
		compress          func(io.Writer) (io.WriteCloser, error)
	}{
		{"crc7", "kernel/lib/crc7.ko", "xz", func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) }},
		{"crc8", "kernel/lib/crc8.ko", "zst", func(w io.Writer) (io.WriteCloser, error) { return zstd.NewWriter(w) }},
		{"crc_itu_t", "kernel/lib/crc-itu-t.ko", "gz", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil }},
	}
	for _, tt := range tests {
		raw, err := os.ReadFile(filepath.Join(dir, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw, err := tt.compress(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), filepath.Base(tt.path)+"."+tt.ext)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := Load(p, ""); err != nil {
			t.Errorf("Load(%s): %v", p, err)
		}
		if !loadedModules(t)[tt.module] {
			t.Errorf("after Load(%s): %s not in /proc/modules", p, tt.module)
		}
	}
}

func TestGuestLoadErrors(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "bogus.ko")
	if err := os.WriteFile(bogus, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Load(bogus, "")
	if err == nil || !strings.Contains(err.Error(), "load module "+bogus+": finit_module: ENOEXEC") {
		t.Errorf("Load(%s) error = %v, want ENOEXEC naming the file", bogus, err)
	}
	missing := filepath.Join(t.TempDir(), "missing.ko")
	if err := Load(missing, ""); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%s) error = %v, want fs.ErrNotExist naming the file", missing, err)
	}
	ix, err := Open(guestModulesDir(t))
	if err != nil {
		t.Fatal(err)
	}
	// In modules.dep but not shipped into the guest.
	if err := ix.LoadAll("ext4"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadAll(ext4) error = %v, want fs.ErrNotExist", err)
	}
}
