package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"initos/initramfs"
)

func runInitrdCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"initrd"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestInitrdLs(t *testing.T) {
	a := &initramfs.Archive{ModTime: time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)}
	a.AddFile("init", 0o4755, []byte("#!"))
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	a.AddSymlink("bin", "usr/bin")
	a.AddDir("tmp", 0o1777)
	p := filepath.Join(t.TempDir(), "initrd.img")
	if err := a.WriteFile(p, initramfs.Gzip); err != nil {
		t.Fatal(err)
	}
	out, _, err := runInitrdCmd(t, "ls", p)
	if err != nil {
		t.Fatal(err)
	}
	want := `lrwxrwxrwx   1 0     0            7 2024-01-02 03:04 bin -> usr/bin
drwxr-xr-x   2 0     0            0 2024-01-02 03:04 dev
crw-------   1 0     0       5,   1 2024-01-02 03:04 dev/console
-rwxr-xr-x   1 0     0            2 2024-01-02 03:04 init
drwxrwxrwx   2 0     0            0 2024-01-02 03:04 tmp
`
	// AddFile takes fs.FileMode bits: 0o4755 is not fs.ModeSetuid, and
	// 0o1777 not fs.ModeSticky, so neither special bit is set.
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("initrd ls diff (-want +got):\n%s", diff)
	}
}

func TestLsMode(t *testing.T) {
	for mode, want := range map[uint32]string{
		0o104755: "-rwsr-xr-x", 0o104644: "-rwSr--r--", 0o041777: "drwxrwxrwt", 0o041776: "drwxrwxrwT",
		0o102750: "-rwxr-s---", 0o060660: "brw-rw----", 0o010644: "prw-r--r--", 0o140755: "srwxr-xr-x", 0o070644: "?rw-r--r--",
	} {
		if got := lsMode(mode); got != want {
			t.Errorf("lsMode(%o) = %s, want %s", mode, got, want)
		}
	}
}

func TestInitrdLsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("\xfd7zXZ\x00rest"), 0o644)
	tests := []struct {
		args []string
		want string
		is   error
	}{
		{[]string{"ls"}, "wrong number of arguments", errUsage},
		{[]string{"ls", "a", "b"}, "wrong number of arguments", errUsage},
		{[]string{"ls", filepath.Join(dir, "missing")}, "no such file", os.ErrNotExist},
		{[]string{"ls", bad}, "initrd ls " + bad + ": read initramfs segment 1: unsupported initramfs compression: xz", initramfs.ErrUnsupported},
	}
	for _, tt := range tests {
		_, _, err := runInitrdCmd(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.is) {
			t.Errorf("initrd %q error = %v, want %v containing %q", tt.args, err, tt.is, tt.want)
		}
	}
}

func TestInitrdModules(t *testing.T) {
	dir := "../../kmod/testdata/synthetic"
	out, _, err := runInitrdCmd(t, "modules", "fs-top", "needs-soft", "--kernel-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "base\tkernel/c/base.ko.zst\tmodule\n" +
		"mid_mod\tkernel/b/mid_mod.ko.xz\tmodule\n" +
		"top_mod\tkernel/a/top-mod.ko\tmodule\n" +
		"softloop\tkernel/j/softloop.ko\toptional\n" +
		"softer\tkernel/e/softer.ko.gz\toptional\n" +
		"sha_thing\t-\tbuiltin\n" +
		"needs_soft\tkernel/f/needs-soft.ko\tmodule\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("initrd modules diff (-want +got):\n%s", diff)
	}
	out, _, err = runInitrdCmd(t, "modules", "--kernel-dir", dir, "--paths", "fs-top", "sha-thing")
	if err != nil {
		t.Fatal(err)
	}
	want = filepath.Join(dir, "kernel/c/base.ko.zst") + "\n" + filepath.Join(dir, "kernel/b/mid_mod.ko.xz") + "\n" +
		filepath.Join(dir, "kernel/a/top-mod.ko") + "\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("initrd modules --paths diff (-want +got):\n%s", diff)
	}
}

func TestInitrdModulesErrors(t *testing.T) {
	dir := "../../kmod/testdata/synthetic"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"modules", "btrfs"}, "--kernel-dir is required"},
		{[]string{"modules", "--kernel-dir", dir}, "wrong number of arguments"},
		{[]string{"modules", "--kernel-dir", dir, "nope"}, "module nope not found in " + dir},
		{[]string{"modules", "--kernel-dir", "/nonexistent", "x"}, "open module index /nonexistent"},
	}
	for _, tt := range tests {
		_, _, err := runInitrdCmd(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("initrd %q error = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
