package usbmode

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
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
// (no keys), a swtpm, a USB stick (usb-storage on an xhci controller,
// as a real stick) holding a USB image from install.BuildUSB (the
// installer UKI: initos-init with the install mode's default early
// modules, USB mass storage among them, initos.mode=install and the
// recovery image's root hash on its signed command line, a signed PCR 11
// policy; the recovery root: static initos + mkfs.btrfs) and two blank
// virtio disks.
//
// Boot 1: the firmware boots the stick; initos-init finds it through
// xhci_pci and usb_storage, opens the recovery root through dm-verity and
// runs its `initos install` unattended, which enrolls the owner's Secure
// Boot keys (PK, KEK, db) and asks for a reboot. Boot 2, Secure Boot on:
// the same, and the install onto both disks (an ESP pair and a LUKS2
// volume each, TPM tokens and bindings under the installer UKI's signed
// policy, btrfs raid1, boot entries), then a power-off. Boot 3, the
// stick unplugged: the firmware boots "InitOS A" (disk 1's ESP A) under
// Secure Boot; initos-init unseals both volumes from the TPM, checks the
// bindings, opens them, mounts the raid1 btrfs root the installer pulled
// and hands over to its init, which reports (and finds the TPM refusing
// a second unseal). Boot 4: disk 1's ESPs are made unreadable (their FAT
// boot sectors zeroed, as a dead ESP); the firmware's InitOS entries
// fail and its removable-media path boots \EFI\BOOT\BOOTX64.EFI from
// disk 2's ESP, which reaches the same root the same way.
func TestVMInstallThenBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("VM test: four OVMF boots under TCG")
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
		Disks: []vmtest.Disk{{Path: e.usb, USB: true}, {Path: e.target, Serial: "target-a"}, {Path: e.target, Serial: "target-b"}},
	})

	// The stick is USB mass storage: initos-init finds its ESP as a SCSI
	// disk, through the installer initrd's xhci_pci and usb_storage.
	const stickESP = `initos: esp: /dev/sda1 "InitOS installer"`
	res := e.boot(t, vm, "boot 1 (the USB stick, setup mode: keys)")
	for _, want := range []string{stickESP, "initos: install: Secure Boot keys enrolled: rebooting into the installer"} {
		if !strings.Contains(string(res.Console), want) {
			t.Fatalf("boot 1: console lacks %q\n%s", want, tail(res.Console, 40))
		}
	}
	t.Logf("boot 1 console (end):\n%s", tail(res.Console, 12))
	res = e.boot(t, vm, "boot 2 (the USB stick, Secure Boot on: install)")
	console := string(res.Console)
	// The summary's TPM line says the volumes are bound (enroll.Bind with
	// the installer UKI's .pcrsig, seen through usbmode.ExtraDir).
	// Secure Boot on: the TPM tokens' PCR 7 is the Secure Boot state that
	// boots 3 and 4 must show again to unseal.
	for _, want := range []string{stickESP, "Secure Boot: on", "; bound (initos-binding)", "btrfs raid1", "initos: install: installed: powering off", "initos: install: done in "} {
		if !strings.Contains(console, want) {
			t.Errorf("boot 2: console lacks %q", want)
		}
	}
	if strings.Contains(console, "FAILED: ") || t.Failed() {
		t.Fatalf("boot 2: the install failed")
	}
	t.Logf("boot 2 console (end):\n%s", tail(res.Console, 30))

	vm.Machine.Unplug(0)
	res = e.boot(t, vm, "boot 3 (InitOS A: disk 1's ESP A)")
	if started := firmwareStarted(t, "boot 3", res.Console); !strings.Contains(started, `"InitOS A"`) {
		t.Errorf("boot 3: the firmware started %q, want the InitOS A entry", started)
	}
	e.checkBooted(t, res, "boot 3", espGUIDs(t, vm.Machine.DiskPath(1), 1))

	killESPs(t, vm.Machine.DiskPath(1))
	res = e.boot(t, vm, "boot 4 (disk 1's ESPs dead: disk 2's ESP)")
	if started := firmwareStarted(t, "boot 4", res.Console); started == "" || strings.Contains(started, `"InitOS `) {
		t.Errorf("boot 4: the firmware started %q, want a removable-media (device) entry, InitOS A and B failing", started)
	}
	e.checkBooted(t, res, "boot 4", espGUIDs(t, vm.Machine.DiskPath(2), 1, 2))
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
	e.uki = e.buildUKI(t, k, cfg, bootdisk.VMModules, vmCmdline, sb)
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
	// nil modules: the install mode's defaults (USB mass storage among
	// them), as `initos initrd build --mode install` ships them.
	writeFile(t, installer, e.buildUKI(t, k, icfg, nil, vmCmdline+" "+install.InstallModeArg+" "+RootHashParam+"="+recHash, sb))

	image := e.rootImage(t)
	icfgJSON := install.Config{Disks: []string{"virtio-target-a", "virtio-target-b"}, Yes: true, UKI: ukiPath, Modules: modsPath,
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

// buildUKI builds the production initrd (initos-init, the early modules
// mods (nil: the mode's defaults), cfg) into a UKI signed for Secure Boot
// and with the test PCR policy key.
func (e *e2e) buildUKI(t *testing.T, k vmtest.Kernel, cfg *bootconfig.Config, mods []string, cmdline string, sb *bootdisk.SecureBootKey) []byte {
	t.Helper()
	rd, err := bootdisk.Initrd(k, cfg, mods)
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
// init, told to try unsealing both volumes again with the UKI's .pcrsig.
func (e *e2e) rootImage(t *testing.T) string {
	t.Helper()
	init, err := bootdisk.RootInit()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := json.Marshal(report.Config{Name: "installed", LUKS: []string{"/dev/vda3", "/dev/vdb3"}, PCRSig: string(bootdisk.Section(e.uki, ".pcrsig"))})
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

// checkBooted: the firmware booted the UKI from one of the ESPs esps
// (partition GUIDs); the installed root's init ran on the installed
// btrfs root subvolume, raid1 over both LUKS volumes, opened by the TPM
// under Secure Boot, and a second unseal of each from the root was
// refused.
func (e *e2e) checkBooted(t *testing.T, res *vmtest.Result, what string, esps []string) {
	t.Helper()
	r := bootdisk.RootReport(t, res.Console)
	root := r.Mounts["/"]
	if r.Name != "installed" || root.FSType != "btrfs" || root.Root != "/images/roots/host" {
		t.Errorf("%s: root %q: / = %+v, want the installed images/roots/host on btrfs", what, r.Name, root)
	}
	if !strings.HasPrefix(root.Source, "/dev/mapper/luks-") {
		t.Errorf("%s: root on %q, want a LUKS volume opened by initos-init", what, root.Source)
	}
	raid1 := []string{"raid1"}
	if r.BtrfsDevices != 2 || !slices.Equal(r.BtrfsProfiles["data"], raid1) || !slices.Equal(r.BtrfsProfiles["metadata"], raid1) {
		t.Errorf("%s: btrfs devices %d, profiles %v, want 2 devices, data and metadata raid1", what, r.BtrfsDevices, r.BtrfsProfiles)
	}
	t.Logf("%s: the root's init ran %.1f s after the kernel started", what, r.Uptime)
	if esp := bootedESP(r.Kmsg); !slices.Contains(esps, esp) {
		t.Errorf("%s: initos-init booted from the ESP with PARTUUID %q, want one of %q (log: %q)", what, esp, esps, r.Kmsg)
	} else {
		t.Logf("%s: booted from the ESP with PARTUUID %s", what, esp)
	}
	// PCR 11: the UKI the installer wrote to the ESPs is the one that
	// booted, through enter-initrd and leave-initrd.
	want11, err := tpm2.PredictPCR11(bytes.NewReader(e.uki), boot.PhaseEnterInitrd, boot.PhaseLeaveInitrd)
	if err != nil {
		t.Fatal(err)
	}
	if r.PCRs[11] != hex.EncodeToString(want11) {
		t.Errorf("%s: PCR 11 in the root = %s, want %x (the installed UKI, enter-initrd, leave-initrd)", what, r.PCRs[11], want11)
	}
	if len(r.Unseal) != 2 || !strings.HasPrefix(r.Unseal[0], "refused: ") || !strings.HasPrefix(r.Unseal[1], "refused: ") {
		t.Errorf("%s: unseal from the root = %q, want both volumes refused by the PCR policy", what, r.Unseal)
	}
	console := string(res.Console)
	for _, want := range []string{"initos: unlock: done in ", "initos: root: done in "} {
		if !strings.Contains(console, want) {
			t.Errorf("%s: console lacks %q", what, want)
		}
	}
	if strings.Contains(console, "FAILED: ") || strings.Contains(console, "initos.mode=install") {
		t.Errorf("%s failed or booted the installer", what)
	}
}

// firmwareStarted logs OVMF's boot manager lines ("BdsDxe: loading
// Boot0001 "InitOS A" from HD(...)", "failed to load", "starting") and
// returns the last "starting" one.
func firmwareStarted(t *testing.T, what string, console []byte) string {
	t.Helper()
	var lines []string
	started := ""
	for _, line := range strings.Split(string(console), "\n") {
		i := strings.Index(line, "BdsDxe: ")
		if i < 0 {
			continue
		}
		line = strings.TrimSpace(line[i:])
		lines = append(lines, line)
		if strings.HasPrefix(line, "BdsDxe: starting ") {
			started = line
		}
	}
	t.Logf("%s: the firmware's boot manager:\n%s", what, strings.Join(lines, "\n"))
	return started
}

// bootedESP returns the PARTUUID of the ESP initos-init mounted, from its
// "esp: DEVICE NAME (PARTUUID GUID, slot ...)" log line.
func bootedESP(kmsg []string) string {
	for _, line := range kmsg {
		if _, rest, ok := strings.Cut(line, "initos: esp: "); ok {
			if _, guid, ok := strings.Cut(rest, "(PARTUUID "); ok {
				guid, _, _ = strings.Cut(guid, ",")
				return strings.ToLower(guid)
			}
		}
	}
	return ""
}

// espGUIDs returns the partition GUIDs of partitions nums of a disk image.
func espGUIDs(t *testing.T, disk string, nums ...int) []string {
	t.Helper()
	var guids []string
	for _, n := range nums {
		hd, err := install.PartitionHardDrive(disk, n)
		if err != nil {
			t.Fatal(err)
		}
		guids = append(guids, strings.ToLower(hd.PartitionSignature.String()))
	}
	return guids
}

// killESPs zeroes the first MiB (boot sector, FSInfo, backup boot sector,
// the FAT's start) of both ESPs of a disk image: the firmware finds no
// filesystem there any more.
func killESPs(t *testing.T, disk string) {
	t.Helper()
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []int{1, 2} {
		hd, err := install.PartitionHardDrive(disk, n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, 1<<20), int64(hd.PartitionStart)*512); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
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
