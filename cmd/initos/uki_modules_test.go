package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/initrd"
	"initos/internal/testenv"
	"initos/pecoff"
	"initos/verity"
)

// ukiModulesImage makes a small squashfs with its verity tree appended.
func ukiModulesImage(t *testing.T) string {
	t.Helper()
	mksquashfs := testenv.Tool(t, "mksquashfs")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree/lib/modules/6.1.0-test")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "modules.dep"), bytes.Repeat([]byte("x"), 100000), 0o644)
	img := filepath.Join(dir, "modules.sqfs")
	if out, err := exec.Command(mksquashfs, filepath.Join(dir, "tree"), img, "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	defer f.Close()
	fi, _ := f.Stat()
	if _, err := verity.Format(f, fi.Size(), f, fi.Size(), verity.Params{}); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestUKIModulesImage: `uki build --modules-image` writes the image's
// root hash into the initrd config inside .initrd (covered by the
// signature), named after the initrd's kernel.
func TestUKIModulesImage(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := ukiTestInputs(t)
	kdir := initrdFakeKernelDir(t)
	initBin := filepath.Join(dir, "init")
	os.WriteFile(initBin, []byte("\x7fELF"), 0o755)
	rd := filepath.Join(dir, "initrd.img")
	if _, stderr, err := runInitrdCmd(t, "build", "--init", initBin, "--kernel-dir", kdir, "--module", "fs-a", "-o", rd); err != nil {
		t.Fatalf("initrd build: %v\n%s", err, stderr)
	}
	img := ukiModulesImage(t)
	out := filepath.Join(dir, "uki.efi")
	got := runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--initrd", rd, "--modules-image", img, "--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
	info, err := initrd.ModulesImageInfo(img, "initos/modules-6.1.0-test.sqfs")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "modules image initos/modules-6.1.0-test.sqfs: root hash "+info.RootHash) {
		t.Errorf("uki build output = %q, want the modules image line", got)
	}
	b, _ := os.ReadFile(out)
	p, err := pecoff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := initrd.ReadConfig(p.Section(".initrd"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ModulesImage != info {
		t.Errorf("config in .initrd: modules image %+v, want %+v", cfg.ModulesImage, info)
	}
	if v := runUKICLI(t, false, "verify", "--cert", ukiTestCert, out); !strings.Contains(v, "OK") {
		t.Errorf("uki verify = %q", v)
	}
	// Errors: no initrd, a plain initrd, another kernel, a path without an image.
	runUKICLI(t, true, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"), "--modules-image", img, "-o", out)
	runUKICLI(t, true, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"), "--initrd", filepath.Join(dir, "initrd"), "--modules-image", img, "-o", out)
	runUKICLI(t, true, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"), "--initrd", rd, "--uname", "5.10", "--modules-image", img, "-o", out)
	runUKICLI(t, true, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"), "--initrd", rd, "--modules-image-path", "x", "-o", out)
}
