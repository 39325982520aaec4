package usbmode

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/boot"
	"initos/bootconfig"
	"initos/install"
	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	"initos/internal/installtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/tpm2"
)

// vmCmdline is the kernel command line of the test UKIs.
const vmCmdline = "console=ttyS0 panic=-1 no_timer_check quiet"

// TestVMInstallThenBoot is the installer's end-to-end proof, through the
// firmware only (no direct kernel boot): OVMF in Secure Boot setup mode
// (no keys), a swtpm, a USB image from install.BuildUSB (the installer
// UKI: initos-init, initos.mode=install and the recovery image's root
// hash on its signed command line, a signed PCR 11 policy; the recovery
// root: static initos + mkfs.btrfs) and one blank disk.
//
// Boot 1: the firmware boots the stick; initos-init opens the recovery
// root through dm-verity and runs its `initos install` unattended, which
// enrolls the owner's Secure Boot keys (PK, KEK, db) and asks for a
// reboot. Boot 2, Secure Boot on: the same, and the install onto the
// blank disk (TPM token and binding under the installer UKI's signed
// policy, boot entries), then a power-off. Boot 3, the stick
// unplugged: the firmware boots "InitOS A" from the installed disk under
// Secure Boot; initos-init unseals from the TPM, checks the binding,
// opens LUKS2, mounts the btrfs root the installer pulled and hands over
// to its init, which reports (and finds the TPM refusing a second
// unseal).
func TestVMInstallThenBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("VM test: three OVMF boots under TCG")
	}
	if vmtest.InGuest() {
		t.Skip("not in VM: boots VMs from the host")
	}
	for _, tool := range []string{"mksquashfs", "mkfs.btrfs", "busybox"} {
		testenv.Tool(t, tool)
	}
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	start := time.Now()
	e := newE2E(t, k)
	t.Logf("artifacts built in %v", time.Since(start).Round(time.Second))
	setupMode := &vmtest.Firmware{Code: vmtest.OVMFSecureBoot().Code, Vars: vmtest.OVMF().Vars, SecureBoot: true}
	vm := vmtest.New(t, vmtest.Config{
		Firmware: setupMode, TPM: true,
		Disks: []vmtest.Disk{{Path: e.usb}, {Path: e.target, Serial: "target"}},
	})

	res := e.boot(t, vm, "boot 1 (the stick, setup mode: keys)")
	if want := "initos: install: Secure Boot keys enrolled: rebooting into the installer"; !strings.Contains(string(res.Console), want) {
		t.Fatalf("boot 1: console lacks %q\n%s", want, tail(res.Console, 40))
	}
	t.Logf("boot 1 console (end):\n%s", tail(res.Console, 12))
	res = e.boot(t, vm, "boot 2 (the stick, Secure Boot on: install)")
	console := string(res.Console)
	// The summary's TPM line says the volume is bound (enroll.Bind with
	// the installer UKI's .pcrsig, seen through usbmode.ExtraDir).
	// Secure Boot on: the TPM token's PCR 7 is the Secure Boot state that
	// boot 3 must show again to unseal.
	for _, want := range []string{"Secure Boot: on", "; bound (initos-binding)", "initos: install: installed: powering off", "initos: install: done in "} {
		if !strings.Contains(console, want) {
			t.Errorf("boot 2: console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAILED: ") || t.Failed() {
		t.Fatalf("boot 2: the install failed")
	}
	t.Logf("boot 2 console (end):\n%s", tail(res.Console, 30))

	vm.Machine.Unplug(0)
	res = e.boot(t, vm, "boot 3 (the installed disk alone)")
	e.checkBooted(t, res)
	t.Logf("whole test %v", time.Since(start).Round(time.Second))
}

// e2e holds the test's artifacts.
type e2e struct {
	dir, usb, target string
	uki              []byte // the installed UKI (boot mode)
}

// newE2E builds the installed UKI and modules image, the root image, the
// recovery root, the installer UKI, the install config and the USB image.
func newE2E(t *testing.T, k vmtest.Kernel) *e2e {
	e := &e2e{dir: t.TempDir()}
	owner := installtest.New(t, filepath.Join(e.dir, "owner")) // the owner's keys (and artifacts not used here)
	sb := &bootdisk.SecureBootKey{Key: owner.Owner.DB.Key, Cert: owner.Owner.DB.Cert}
	mods, err := bootdisk.BuildModulesImage(k)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage = "install e2e test", 1, mods.Info
	e.uki = e.buildUKI(t, k, cfg, vmCmdline, sb)
	ukiPath := filepath.Join(e.dir, "initos.efi")
	modsPath := filepath.Join(e.dir, path.Base(mods.Info.File))
	writeFile(t, ukiPath, e.uki)
	writeFile(t, modsPath, mods.Data)

	rec, recHash := recoveryImage(t, e.dir)
	icfg := bootconfig.New()
	icfg.Mode, icfg.BuildID, icfg.FailureTimeoutSec = bootconfig.ModeInstall, "installer e2e test", 1
	icfg.ModulesImage = mods.Info // the same image, from the stick's payload
	icfg.ModulesImage.File = strings.TrimPrefix(install.USBPayloadDir, "/") + "/" + path.Base(mods.Info.File)
	installer := filepath.Join(e.dir, "installer.efi")
	writeFile(t, installer, e.buildUKI(t, k, icfg, vmCmdline+" "+install.InstallModeArg+" "+RootHashParam+"="+recHash, sb))

	image := e.rootImage(t)
	icfgJSON := install.Config{Disks: []string{"virtio-target"}, Yes: true, UKI: ukiPath, Modules: modsPath,
		Image: "oci:" + image, SecureBoot: install.SecureBootConfig{Keys: owner.Keys},
		ESPSize: 64 << 20, MinRootSize: 200 << 20}
	e.usb = filepath.Join(e.dir, "usb.img")
	if _, err := install.BuildUSB(e.usb, install.USBOptions{UKI: installer, Config: &icfgJSON, Recovery: rec}); err != nil {
		t.Fatal(err)
	}
	e.target = filepath.Join(e.dir, "target.img")
	writeFile(t, e.target, nil)
	if err := os.Truncate(e.target, 1<<30); err != nil {
		t.Fatal(err)
	}
	return e
}

// buildUKI builds the production initrd (initos-init, the VM's early
// modules, cfg) into a UKI signed for Secure Boot and with the test PCR
// policy key.
func (e *e2e) buildUKI(t *testing.T, k vmtest.Kernel, cfg *bootconfig.Config, cmdline string, sb *bootdisk.SecureBootKey) []byte {
	t.Helper()
	rd, err := bootdisk.Initrd(k, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	img, err := bootdisk.UKI(k.Image, rd, cmdline, k.Version, sb)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// rootImage writes the OCI layout the installer pulls: the test root
// init, told to try unsealing /dev/vda3 again with the UKI's .pcrsig.
func (e *e2e) rootImage(t *testing.T) string {
	t.Helper()
	init, err := bootdisk.RootInit()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := json.Marshal(report.Config{Name: "installed", LUKS: []string{"/dev/vda3"}, PCRSig: string(bootdisk.Section(e.uki, ".pcrsig"))})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.dir, "image")
	if err := bootdisk.OCIImage(dir, bootdisk.RootFiles(init, map[string][]byte{report.ConfigPath: conf})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// boot boots the machine from its disks once.
func (e *e2e) boot(t *testing.T, vm *vmtest.VM, what string) *vmtest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vmtest.ScaleTimeout(10*time.Minute))
	defer cancel()
	res, err := vm.Machine.Boot(ctx, vmtest.BootSpec{})
	if err != nil || t.Failed() {
		t.Logf("%s: qemu: %s\nconsole:\n%s", what, res.CommandLine(), tail(res.Console, 120))
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s took %v", what, res.Elapsed.Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s console:\n%s", what, tail(res.Console, 120))
		}
	})
	return res
}

// checkBooted: the installed root's init ran on the installed btrfs root
// subvolume, opened by the TPM under Secure Boot, and a second unseal
// from the root was refused.
func (e *e2e) checkBooted(t *testing.T, res *vmtest.Result) {
	r := bootdisk.RootReport(t, res.Console)
	root := r.Mounts["/"]
	if r.Name != "installed" || root.FSType != "btrfs" || root.Root != "/images/roots/host" {
		t.Errorf("root %q: / = %+v, want the installed images/roots/host on btrfs", r.Name, root)
	}
	if !strings.HasPrefix(root.Source, "/dev/mapper/luks-") {
		t.Errorf("root on %q, want a LUKS volume opened by initos-init", root.Source)
	}
	// PCR 11: the UKI the installer wrote to ESP A is the one that booted,
	// through enter-initrd and leave-initrd.
	want11, err := tpm2.PredictPCR11(bytes.NewReader(e.uki), boot.PhaseEnterInitrd, boot.PhaseLeaveInitrd)
	if err != nil {
		t.Fatal(err)
	}
	if r.PCRs[11] != hex.EncodeToString(want11) {
		t.Errorf("PCR 11 in the root = %s, want %x (the installed UKI, enter-initrd, leave-initrd)", r.PCRs[11], want11)
	}
	if len(r.Unseal) != 1 || !strings.HasPrefix(r.Unseal[0], "refused: ") {
		t.Errorf("unseal from the root = %q, want refused by the PCR policy", r.Unseal)
	}
	console := string(res.Console)
	for _, want := range []string{"initos: unlock: done in ", "initos: root: done in "} {
		if !strings.Contains(console, want) {
			t.Errorf("boot 3: console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAILED: ") || strings.Contains(console, "initos.mode=install") {
		t.Errorf("boot 3 failed or booted the installer")
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
