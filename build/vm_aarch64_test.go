//go:build !vmguest

package build_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/build"
	"initos/internal/bootdisk"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVMARM64 boots, on qemu's arm64 virt machine with AAVMF and Secure
// Boot on (the snakeoil db key signs the UKI), what Build made of an
// arm64 image of Debian's arm64 kernel (buildtest.KernelLayer) with the
// aa64 stub and an arm64 initos-init: initos-init loads arm64's early
// modules from its initrd and mounts the modules image through dm-verity
// with the root hash of its signed config. The disk has no LUKS volume:
// the boot then fails on purpose.
func TestVMARM64(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		testenv.Tool(t, tool)
	}
	k, err := vmtest.FindKernelArch(vmtest.ArchARM64)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	sb := bootdisk.Snakeoil(t)
	dir := t.TempDir()
	init := filepath.Join(dir, "initos-init")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", init, "initos/cmd/initos-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build initos-init (arm64): %v\n%s", err, out)
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	opts := build.Options{Source: bt.WriteImageArch(t, "arm64", bt.KernelLayer(t, k, "arm64")), OutDir: filepath.Join(dir, "out"),
		Init: init, Stub: vmtest.StubARM64(), Cmdline: "console=ttyAMA0 panic=-1", Config: cfg,
		SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: bootdisk.PCRKey(), Epoch: bt.Time}
	m, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := bt.ReadOut(t, opts.OutDir)
	disk, err := bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 64}})
	if err != nil {
		t.Fatal(err)
	}
	err = disk.FormatESP(1, "ESP-A", map[string][]byte{
		"EFI/BOOT/BOOTAA64.EFI": out[build.UKIFile], "EFI/Linux/initos.efi": out[build.UKIFile],
		m.ModulesImage.ESPPath: out[m.ModulesImage.File],
	})
	if err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{Arch: vmtest.ArchARM64, Firmware: vmtest.AAVMFSecureBoot(), Disks: []vmtest.Disk{{Path: disk.Path}}})
	ctx, cancel := context.WithTimeout(context.Background(), scaled(8*time.Minute))
	defer cancel()
	res, err := vm.Machine.Boot(ctx, vmtest.BootSpec{})
	if err != nil {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Fatal(err)
	}
	want := fmt.Sprintf("modules: %s verified by dm-verity (root hash %s)", m.ModulesImage.ESPPath, m.ModulesImage.RootHash)
	if !bytes.Contains(res.Console, []byte(want)) {
		t.Fatalf("console lacks %q:\n%s", want, res.Console)
	}
	t.Logf("arm64 boot took %v", res.Elapsed.Round(time.Second))
}
