package modimage

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/squashfs"
)

// fakeKernel writes a small module directory and firmware tree.
func fakeKernel(t *testing.T) (kdir, fw string) {
	t.Helper()
	root := t.TempDir()
	kdir = filepath.Join(root, "lib/modules/6.1.0-test")
	fw = filepath.Join(root, "lib/firmware")
	files := map[string]string{
		"modules.dep":                   "kernel/fs/foo.ko: kernel/lib/bar.ko.xz\nkernel/lib/bar.ko.xz:\n",
		"modules.alias":                 "alias fs-foo foo\n",
		"modules.builtin":               "kernel/fs/ext4.ko\n",
		"kernel/fs/foo.ko":              strings.Repeat("\x7fELF foo ", 5000),
		"kernel/lib/bar.ko.xz":          "\xfd7zXZ\x00 not really",
		"kernel/drivers/net/baz.ko.zst": "(\xb5/\xfd zstd",
	}
	for p, c := range files {
		writeFile(t, filepath.Join(kdir, p), c)
	}
	if err := os.Symlink("/usr/src/linux-headers-6.1.0-test", filepath.Join(kdir, "build")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(fw, "vendor/chip.bin"), "firmware blob")
	if err := os.Symlink("vendor/chip.bin", filepath.Join(fw, "chip.bin")); err != nil {
		t.Fatal(err)
	}
	return kdir, fw
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBuild(t *testing.T) {
	kdir, fw := fakeKernel(t)
	out := filepath.Join(t.TempDir(), "modules.sqfs")
	opts := Options{KernelDir: kdir, FirmwareDir: fw, Squashfs: squashfs.Options{Epoch: time.Unix(1700000000, 0)}}
	res, err := BuildFile(context.Background(), out, opts)
	if err != nil {
		t.Fatalf("BuildFile: %v", err)
	}
	if res.Release != "6.1.0-test" || res.FileName != "modules-6.1.0-test.sqfs" || res.Modules != 3 || res.Firmware != 1 {
		t.Errorf("Result = release %q file %q modules %d firmware %d, want 6.1.0-test, modules-6.1.0-test.sqfs, 3, 1",
			res.Release, res.FileName, res.Modules, res.Firmware)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if res.HashOffset != res.DataSize || res.DataSize%4096 != 0 || int64(len(img)) != res.Verity.HashEnd() {
		t.Errorf("hash offset %d, data size %d, file %d bytes (hash end %d): want the tree right after 4 KiB-padded data",
			res.HashOffset, res.DataSize, len(img), res.Verity.HashEnd())
	}
	r, err := squashfs.NewReader(bytes.NewReader(img), res.DataSize)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"modules/6.1.0-test/modules.dep":      "kernel/fs/foo.ko: kernel/lib/bar.ko.xz\nkernel/lib/bar.ko.xz:\n",
		"modules/6.1.0-test/kernel/fs/foo.ko": strings.Repeat("\x7fELF foo ", 5000),
		"firmware/vendor/chip.bin":            "firmware blob",
		"firmware/chip.bin":                   "firmware blob",
	} {
		if got, err := readFile(r, p); err != nil || got != want {
			t.Errorf("image %s = %.40q, %v; want %.40q", p, got, err, want)
		}
	}
	if _, err := r.Lstat(ModulesPath(res.Release) + "/build"); err == nil {
		t.Error("the build symlink is in the image, want it left out")
	}
	r.Walk(func(p string, in *squashfs.Inode) error {
		if in.UID != 0 || in.GID != 0 {
			t.Errorf("%s owned by %d:%d, want root", p, in.UID, in.GID)
		}
		return nil
	})
	again := filepath.Join(t.TempDir(), "again.sqfs")
	res2, err := BuildFile(context.Background(), again, opts)
	if err != nil || res2.RootHash != res.RootHash {
		t.Errorf("second build: root hash %v (%v), want %s (reproducible)", res2, err, res.RootHash)
	}
	vs := testenv.Tool(t, "veritysetup")
	if b, err := exec.Command(vs, "verify", out, out, res.RootHash, "--hash-offset="+strconv.FormatInt(res.HashOffset, 10)).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify: %v\n%s", err, b)
	}
}

func readFile(r *squashfs.Reader, p string) (string, error) {
	b, err := fs.ReadFile(r, p)
	return string(b), err
}

func TestBuildErrors(t *testing.T) {
	kdir, _ := fakeKernel(t)
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{}, "no kernel module directory given"},
		{Options{KernelDir: t.TempDir()}, "is not a kernel module directory (no modules.dep)"},
		{Options{KernelDir: kdir, Release: "a/b"}, `bad kernel release "a/b"`},
		{Options{KernelDir: kdir, FirmwareDir: "/nonexistent"}, "/nonexistent: no such file or directory"},
		{Options{KernelDir: kdir, Squashfs: squashfs.Options{BlockSize: 3}}, "block size 3"},
	} {
		out := filepath.Join(t.TempDir(), "m.sqfs")
		_, err := BuildFile(context.Background(), out, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("BuildFile(%+v) = %v, want an error containing %q", c.opts, err, c.want)
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Errorf("BuildFile(%+v) left %d files behind", c.opts, len(ents))
		}
	}
}

// TestCancelLeavesNothing: a cancelled build leaves no file.
func TestCancelLeavesNothing(t *testing.T) {
	kdir, fw := fakeKernel(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := BuildFile(ctx, filepath.Join(dir, "m.sqfs"), Options{KernelDir: kdir, FirmwareDir: fw}); err == nil {
		t.Fatal("BuildFile with a cancelled context succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a cancelled build left %v", ents)
	}
}

// TestBuildAdd: Options.Add fills the image (an OCI layer, say) instead of
// host directories.
func TestBuildAdd(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.sqfs")
	res, err := BuildFile(context.Background(), out, Options{Release: "6.9.0-oci", Add: func(w *squashfs.Writer) error {
		dep := "kernel/x.ko:\n"
		return w.Add(squashfs.Entry{Path: ModulesPath("6.9.0-oci") + "/modules.dep", Mode: 0o644, Size: int64(len(dep))}, strings.NewReader(dep))
	}})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(out)
	r, err := squashfs.NewReader(bytes.NewReader(img), res.DataSize)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readFile(r, "modules/6.9.0-oci/modules.dep"); got != "kernel/x.ko:\n" || err != nil {
		t.Errorf("modules.dep = %q, %v", got, err)
	}
	if _, err := BuildFile(context.Background(), out, Options{Add: func(*squashfs.Writer) error { return nil }}); err == nil || !strings.Contains(err.Error(), `bad kernel release ""`) {
		t.Errorf("BuildFile with Add and no Release = %v, want refused", err)
	}
}
