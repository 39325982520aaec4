//go:build !vmguest

package build_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/build"
	"initos/images/imagestest"
	"initos/internal/bootdisk"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVMBuild boots what Build made of the debianhost image: OVMF with
// Secure Boot on (OVMF's snakeoil db key signs the UKI) starts the UKI
// from an ESP, the image's kernel runs initos-init from the production
// initrd, which loads its early modules (taken from the modules image)
// and mounts the modules image through dm-verity with the root hash of
// its signed config. The disk has no LUKS volume: the boot then fails on
// purpose and the machine powers off.
func TestVMBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		testenv.Tool(t, tool)
	}
	src := imagestest.Build(t, "debianhost")
	sb := bootdisk.Snakeoil(t)
	dir := t.TempDir()
	m, out := buildForVM(t, src, dir, sb, "console=ttyS0 panic=-1 no_timer_check")
	disk, err := bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 200}})
	if err != nil {
		t.Fatal(err)
	}
	err = disk.FormatESP(1, "ESP-A", map[string][]byte{
		"EFI/BOOT/BOOTX64.EFI": out[build.UKIFile], "EFI/Linux/initos.efi": out[build.UKIFile],
		m.ModulesImage.ESPPath: out[m.ModulesImage.File],
	})
	if err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{Firmware: vmtest.OVMFSecureBoot(), Disks: []vmtest.Disk{{Path: disk.Path}}})
	ctx, cancel := context.WithTimeout(context.Background(), scaled(6*time.Minute))
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
	t.Logf("boot took %v", res.Elapsed.Round(time.Second))
}

// buildForVM builds src with the snakeoil db key, the bootdisk PCR key,
// the real initos-init and the early modules a q35 VM needs.
func buildForVM(t *testing.T, src, dir string, sb *bootdisk.SecureBootKey, cmdline string) (*build.Manifest, map[string][]byte) {
	bin, err := bootdisk.InitosInit()
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	opts := build.Options{Source: src, OutDir: filepath.Join(dir, "out"), Init: init, Cmdline: cmdline,
		Modules: bootdisk.VMModules, Config: cfg, SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: bootdisk.PCRKey(), Epoch: bt.Time}
	m, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, bt.ReadOut(t, opts.OutDir)
}

// scaled multiplies a VM timeout by $INITOS_VMTEST_TIMEOUT_SCALE.
func scaled(d time.Duration) time.Duration {
	var f float64
	if _, err := fmt.Sscan(os.Getenv("INITOS_VMTEST_TIMEOUT_SCALE"), &f); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}
