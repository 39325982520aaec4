package initrd

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/bootconfig"
	"initos/cpio"
	"initos/initramfs"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/verity"
)

// fakeKernel writes a module directory: a needs b; c unrelated; d built in.
func fakeKernel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test")
	files := map[string]string{
		"kernel/a.ko": "module a", "kernel/b.ko": "module b", "kernel/c.ko": "module c",
		"modules.dep":     "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\n",
		"modules.alias":   "alias fs-a a\nalias fs-c c\n",
		"modules.builtin": "kernel/d.ko\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fakeInit(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "initos-init")
	if err := os.WriteFile(p, []byte("\x7fELF init"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// entries reads an image: regular file contents by name.
func entries(t *testing.T, img []byte) map[string]string {
	t.Helper()
	r := initramfs.NewReader(bytes.NewReader(img))
	got := map[string]string{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode&cpio.TypeMask == cpio.TypeReg {
			b, _ := io.ReadAll(r)
			got[h.Name] = string(b)
		}
	}
}

func writeImage(t *testing.T, rd *Image, c initramfs.Compression) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := rd.Archive.WriteTo(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBuild(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	opts := Options{Init: fakeInit(t), KernelDir: fakeKernel(t), Modules: []string{"fs-a", "d"}, Config: &bootconfig.Config{Version: 1, Mode: bootconfig.ModeBoot, SecurityVersion: 9}}
	rd, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, rd, initramfs.ZstdBest)
	again, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, writeImage(t, again, initramfs.ZstdBest)) {
		t.Errorf("Build twice: different bytes")
	}
	got := entries(t, img)
	cfg, err := bootconfig.Parse([]byte(got["etc/initos/initrd.json"]))
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(cfg.EarlyModules, []string{"fs-a", "d"}) || cfg.Kernel != "6.1.0-test" || cfg.SecurityVersion != 9 {
		t.Errorf("shipped config = %+v", cfg)
	}
	for _, name := range []string{"init", "lib/modules/6.1.0-test/kernel/a.ko", "lib/modules/6.1.0-test/kernel/b.ko"} {
		if _, ok := got[name]; !ok {
			t.Errorf("initrd lacks %s", name)
		}
	}
	if _, ok := got["lib/modules/6.1.0-test/kernel/c.ko"]; ok {
		t.Errorf("initrd has c.ko, which nothing asked for")
	}
	if opts.Config.Kernel != "" {
		t.Errorf("Build changed the caller's config")
	}
}

func TestBuildErrors(t *testing.T) {
	k := fakeKernel(t)
	tests := []struct {
		opts Options
		want string
	}{
		{Options{KernelDir: k}, "no initos-init binary"},
		{Options{Init: fakeInit(t)}, "no kernel module directory"},
		{Options{Init: fakeInit(t), KernelDir: k, Modules: []string{"nope"}}, "module nope not found"},
		{Options{Init: fakeInit(t), NoModules: true, Config: &bootconfig.Config{Version: 1}}, "config: invalid initrd config: mode: missing"},
		{Options{Init: "/nonexistent", NoModules: true}, "init:"},
	}
	for _, tt := range tests {
		if _, err := Build(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
}

// TestBuildDebianKernel: the default early modules resolve on the
// installed kernel, for both modes; the other architecture's are skipped.
func TestBuildDebianKernel(t *testing.T) {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	for _, mode := range []bootconfig.Mode{bootconfig.ModeBoot, bootconfig.ModeInstall} {
		rd, err := Build(Options{Init: fakeInit(t), KernelDir: k.ModulesDir, GOARCH: "amd64", Config: &bootconfig.Config{Version: 1, Mode: mode}})
		if err != nil {
			t.Fatalf("Build(%s) = %v", mode, err)
		}
		names := strings.Join(rd.Config.EarlyModules, " ")
		if !strings.Contains(names, "dm-verity") || strings.Contains(names, "virtio_mmio") || strings.Contains(names, "usb_storage") != (mode == bootconfig.ModeInstall) {
			t.Errorf("mode %s: early modules %q", mode, names)
		}
	}
}

// TestUpdateConfig: rewriting the config gives the bytes Build
// gives with that config (what uki build --modules-image relies on).
func TestUpdateConfig(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	opts := Options{Init: fakeInit(t), KernelDir: fakeKernel(t), Modules: []string{"fs-a"}}
	rd, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	m := bootconfig.ModulesImage{File: "initos/m.sqfs", RootHash: strings.Repeat("ab", 32), DataSize: 4096, HashOffset: 4096}
	// zstd is rewritten at the best level, what initrd build writes.
	for _, c := range []initramfs.Compression{initramfs.None, initramfs.Gzip, initramfs.ZstdBest} {
		got, err := UpdateConfig(writeImage(t, rd, c), func(cfg *bootconfig.Config) error { cfg.ModulesImage = m; return nil })
		if err != nil {
			t.Fatalf("UpdateConfig(%s) = %v", c, err)
		}
		cfg := *rd.Config
		cfg.ModulesImage = m
		opts.Config = &cfg
		want, err := Build(opts)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, writeImage(t, want, c)) {
			t.Errorf("UpdateConfig(%s) differs from a build with the new config", c)
		}
		back, err := ReadConfig(got)
		if err != nil || back.ModulesImage != m {
			t.Errorf("ReadConfig = %+v, %v", back, err)
		}
	}
	var plain initramfs.Archive
	plain.AddFile("init", 0o755, []byte("x"))
	var b bytes.Buffer
	plain.WriteTo(&b, initramfs.Zstd)
	if _, err := UpdateConfig(b.Bytes(), func(*bootconfig.Config) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a production initrd") {
		t.Errorf("UpdateConfig(no config) = %v", err)
	}
	if _, err := ReadConfig(b.Bytes()); err == nil || !strings.Contains(err.Error(), "not a production initrd") {
		t.Errorf("ReadConfig(no config) = %v", err)
	}
}

// squashImage makes a squashfs of a small tree with mksquashfs (oracle).
func squashImage(t *testing.T) string {
	t.Helper()
	mksquashfs := testenv.Tool(t, "mksquashfs")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree/lib/modules/6.1.0-test")
	os.MkdirAll(tree, 0o755)
	noise := make([]byte, 256<<10) // incompressible: a tree of several blocks
	rand.Read(noise)
	os.WriteFile(filepath.Join(tree, "modules.dep"), noise, 0o644)
	img := filepath.Join(dir, "m.sqfs")
	if out, err := exec.Command(mksquashfs, filepath.Join(dir, "tree"), img, "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

// TestModulesImageInfoOracle: the root hash ModulesImageInfo recomputes
// equals what veritysetup format printed when it appended the tree.
func TestModulesImageInfoOracle(t *testing.T) {
	veritysetup := testenv.Tool(t, "veritysetup")
	img := squashImage(t)
	fi, _ := os.Stat(img)
	off := fi.Size()
	out, err := exec.Command(veritysetup, "format", "--hash-offset", strconv.FormatInt(off, 10), img, img).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup format: %v\n%s", err, out)
	}
	want := regexp.MustCompile(`Root hash:\s+([0-9a-f]{64})`).FindSubmatch(out)
	info, err := ModulesImageInfo(img, "initos/modules-x.sqfs")
	if err != nil {
		t.Fatalf("ModulesImageInfo = %v", err)
	}
	if want == nil || info.RootHash != string(want[1]) || info.HashOffset != off || info.DataSize != off || info.File != "initos/modules-x.sqfs" {
		t.Errorf("ModulesImageInfo = %+v, want root hash %s, offset and size %d", info, want, off)
	}
	if err := (&bootconfig.Config{Version: 1, Mode: "boot", ModulesImage: info}).Validate(); err != nil {
		t.Errorf("the info does not validate: %v", err)
	}
}

func TestModulesImageInfoErrors(t *testing.T) {
	img := squashImage(t)
	if _, err := ModulesImageInfo(img, "m"); err == nil || !strings.Contains(err.Error(), "no verity superblock") {
		t.Errorf("ModulesImageInfo(no tree) = %v", err)
	}
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	fi, _ := f.Stat()
	if _, err := verity.Format(f, fi.Size(), f, fi.Size(), verity.Params{}); err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, fi.Size()+4096+10) // inside the tree
	f.Close()
	if _, err := ModulesImageInfo(img, "m"); err == nil || !strings.Contains(err.Error(), "the hash tree on disk does not match the data") {
		t.Errorf("ModulesImageInfo(corrupt tree) = %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, make([]byte, 8192), 0o644)
	if _, err := ModulesImageInfo(junk, "m"); err == nil || !strings.Contains(err.Error(), "not a squashfs image") {
		t.Errorf("ModulesImageInfo(junk) = %v", err)
	}
}
