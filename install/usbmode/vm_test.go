package usbmode

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"initos/install"
	"initos/internal/installtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVM: a USB installer image (install.BuildUSB: the install config and
// payload on its ESP, a recovery root as a verity squashfs) and a blank
// disk. The guest mounts the stick's ESP as the initrd does, then Run
// opens the recovery image through dm-verity and runs the recovery
// root's `initos install` in it, which installs onto the blank disk
// (with the TPM); the guest checks the result.
func TestVM(t *testing.T) {
	if testing.Short() {
		t.Skip("VM test: skipped with -short")
	}
	if vmtest.InGuest() {
		t.Skip("not in VM: TestVM boots VMs from the host")
	}
	dir := t.TempDir()
	fx := installtest.New(t, filepath.Join(dir, "fx"))
	installer := filepath.Join(dir, "installer.efi")
	fx.WriteUKICmdline(t, installer, fx.Owner.DB, "console=ttyS0 "+install.InstallModeArg)
	cfg := install.Config{Disks: []string{"virtio-target"}, Yes: true, Force: true, UKI: fx.UKI, Modules: fx.Modules,
		Image: fx.Image, SecureBoot: install.SecureBootConfig{Keys: fx.Keys}, ESPSize: 40 << 20, MinRootSize: 200 << 20,
		RecoveryKey: install.RecoveryKeyConfig{File: "/run/initos/recovery-key.txt"}}
	rec, root := recoveryImage(t, dir)
	usb := filepath.Join(dir, "usb.img")
	if _, err := install.BuildUSB(usb, install.USBOptions{UKI: installer, Config: &cfg, Recovery: rec}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target.img")
	os.WriteFile(target, nil, 0o644)
	os.Truncate(target, 1<<30)
	rootFile := filepath.Join(dir, "roothash")
	os.WriteFile(rootFile, []byte(root), 0o644)
	vmtest.Run(t, vmtest.Config{
		Modules: []string{"dm-verity", "squashfs", "vfat", "nls_cp437", "nls_ascii", "dm-crypt", "xts", "ecb", "crc32c_generic", "btrfs"},
		Disks:   []vmtest.Disk{{Path: usb}, {Path: target, Serial: "target"}},
		Files:   map[string]string{"/fx/recovery.roothash": rootFile},
		TPM:     true,
	})
}

// recoveryImage builds a minimal recovery root (the initos CLI, static;
// mkfs.btrfs and its libraries; the mount points) as a squashfs with its
// verity tree appended, and returns it and its root hash.
func recoveryImage(t *testing.T, dir string) (string, string) {
	t.Helper()
	root := filepath.Join(dir, "recovery")
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "usr/bin", "root"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	cli := filepath.Join(root, "usr/bin/initos")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", cli, "initos/cmd/initos")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build initos: %v\n%s", err, out)
	}
	for guest, host := range installtest.WithLibraries(t, testenv.Tool(t, "mkfs.btrfs")) {
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		installtest.WriteFiles(t, root, map[string][]byte{guest[1:]: b})
		os.Chmod(filepath.Join(root, guest[1:]), 0o755)
	}
	out := filepath.Join(dir, "recovery.sqfs")
	hash := installtest.WriteModulesFrom(t, testenv.Tool(t, "mksquashfs"), out, root)
	return out, hash
}
