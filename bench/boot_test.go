package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/internal/bootdisk"
	rootreport "initos/internal/bootdisk/report"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// bootBench is the machine of BenchmarkBootToRoot.
type bootBench struct {
	k          vmtest.Kernel
	m          *vmtest.Machine
	disk       *bootdisk.Disk
	ours, peer []byte // the two UKIs
}

const (
	bootCmdline = "console=ttyS0 panic=-1 no_timer_check quiet"
	bootUUID    = "5b8f2a70-1c33-4e7e-9d0a-2f6a4b3c1d0e"
)

// BenchmarkBootToRoot measures, in the same VM (OVMF Secure Boot, swtpm,
// Debian's kernel, one virtio disk: ESP + LUKS2 + btrfs root), the time
// from the kernel's start to the root's /sbin/init (its first reading of
// /proc/uptime) with initos-init (TPM unseal, binding check, modules image
// through dm-verity, coldplug, PCR measurements) and with Debian's
// initramfs-tools (MODULES=most, udev, busybox) opening the same volume
// with a key file it carries (cryptsetup open --key-file, a keyslot with
// the same PBKDF2 as the TPM keyslot). The same kernel, command line
// prefix and root; one boot of each per iteration, interleaved. Metrics:
// seconds to the root's init for both (mean), and x_initramfs-tools =
// theirs / ours (goal >= 2). Guest time: on a loaded host TCG stretches
// both alike; CPU time is the same single vCPU, so no separate CPU ratio.
func BenchmarkBootToRoot(b *testing.B) {
	testenv.RequireRoot(b)
	for _, tool := range []string{"qemu-system-x86_64", "swtpm", "mkinitramfs", "mksquashfs", "mkfs.vfat", "mcopy", "mkfs.btrfs", "cryptsetup", "openssl"} {
		testenv.Tool(b, tool)
	}
	bb := newBootBench(b)
	var ours, theirs time.Duration
	n := 0
	for b.Loop() {
		ours += bb.bootOnce(b, bb.ours)
		theirs += bb.bootOnce(b, bb.peer)
		n++
	}
	b.ReportMetric((ours / time.Duration(n)).Seconds(), "initos-s")
	b.ReportMetric((theirs / time.Duration(n)).Seconds(), "initramfs-tools-s")
	b.ReportMetric(float64(theirs)/float64(ours), "x_initramfs-tools")
}

func newBootBench(b *testing.B) *bootBench {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "%v", err)
	}
	dir := b.TempDir()
	sb := bootdisk.Snakeoil(b)
	bb := &bootBench{k: k}
	mods, err := bootdisk.BuildModulesImage(k)
	if err != nil {
		b.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.ModulesImage, cfg.FailureTimeoutSec = mods.Info, 1
	rd, err := bootdisk.Initrd(k, cfg, bootdisk.VMModules)
	if err != nil {
		b.Fatal(err)
	}
	if bb.ours, err = bootdisk.UKI(k.Image, rd, bootCmdline, k.Version, sb); err != nil {
		b.Fatal(err)
	}
	vol := bootdisk.NewVolume(0, 3, bootUUID, "bench")
	keyfile := []byte("initramfs-tools key file: 32+ bytes of secret here")
	peerRD := peerInitrd(b, k, dir, keyfile)
	peerCmdline := bootCmdline + " root=/dev/mapper/cryptroot rootfstype=btrfs rootflags=subvol=store/roots/host rw init=/sbin/init"
	if bb.peer, err = bootdisk.UKI(k.Image, peerRD, peerCmdline, k.Version, sb); err != nil {
		b.Fatal(err)
	}
	bb.makeDisk(b, dir, vol, keyfile, mods)
	bb.m, err = vmtest.NewMachine(filepath.Join(dir, "machine"), vmtest.MachineConfig{
		Firmware: vmtest.OVMFSecureBoot(), TPM: true, Disks: []vmtest.Disk{{Path: bb.disk.Path}}})
	if err != nil {
		b.Fatal(err)
	}
	bb.disk = &bootdisk.Disk{Path: bb.m.DiskPath(0), Parts: bb.disk.Parts}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	plan := rootreport.EnrollPlan{Volumes: []rootreport.EnrollVolume{{Device: "/dev/vda3", Pass: string(vol.Pass), Bind: true}}}
	if res, err := bootdisk.Enroll(ctx, bb.m, bb.disk, 1, k, plan, sb); err != nil {
		if res != nil {
			b.Logf("console:\n%s", res.Console)
		}
		b.Fatal(err)
	}
	return bb
}

// makeDisk writes the disk: ESP A with the modules image, ESP B, the
// LUKS2 volume (a passphrase, the key file) holding the btrfs root.
func (bb *bootBench) makeDisk(b *testing.B, dir string, vol *bootdisk.Volume, keyfile []byte, mods *bootdisk.ModulesImage) {
	var err error
	bb.disk, err = bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{
		{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 64},
		{Name: "InitOS ESP B", Type: bootdisk.TypeESP, MiB: 64},
		{Name: "InitOS LUKS", Type: bootdisk.TypeLUKS, MiB: 16 + 64},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := bb.disk.FormatESP(1, "ESP-A", map[string][]byte{mods.Info.File: mods.Data}); err != nil {
		b.Fatal(err)
	}
	if _, err := vol.Format([]*bootdisk.Disk{bb.disk}); err != nil {
		b.Fatal(err)
	}
	if err := bb.disk.AddPassphrase(3, vol.Key, keyfile); err != nil {
		b.Fatal(err)
	}
	init, err := bootdisk.RootInit()
	if err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "root.btrfs")
	spec := bootdisk.RootSpec{Files: bootdisk.RootFiles(init, map[string][]byte{rootreport.ConfigPath: []byte(`{"name":"bench"}`)})}
	if err := bootdisk.BuildRoot(context.Background(), []string{root}, 64, spec); err != nil {
		b.Fatal(err)
	}
	if err := bb.disk.EncryptInto(3, root, vol.Key); err != nil {
		b.Fatal(err)
	}
}

// bootOnce boots uki and returns the guest time to the root's init.
func (bb *bootBench) bootOnce(b *testing.B, uki []byte) time.Duration {
	if err := bb.disk.PutFile(1, "EFI/BOOT/BOOTX64.EFI", uki); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := bb.m.Boot(ctx, vmtest.BootSpec{})
	if err != nil {
		b.Fatalf("boot: %v\n%s", err, res.Console)
	}
	r, err := rootreport.Find(res.Console)
	if err != nil {
		b.Fatalf("%v\nconsole:\n%s", err, res.Console)
	}
	return time.Duration(r.Uptime * float64(time.Second))
}

// peerInitrd builds Debian's initramfs-tools initrd (a copy of
// /etc/initramfs-tools, MODULES=most) with a hook carrying cryptsetup and
// the key file, and a local-top script that opens the volume with it
// before initramfs-tools mounts root= (cryptsetup-initramfs's cryptroot
// does the same from a crypttab; this needs no change to the host).
func peerInitrd(b *testing.B, k vmtest.Kernel, dir string, keyfile []byte) []byte {
	conf := filepath.Join(dir, "initramfs-tools")
	if out, err := exec.Command("cp", "-a", "/etc/initramfs-tools", conf).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v\n%s", err, out)
	}
	files := map[string]string{
		"initos-bench/root.key":          string(keyfile),
		"initos-bench/uuid":              bootUUID,
		"hooks/initos-bench":             peerHook,
		"scripts/local-top/initos-bench": peerScript,
		"conf.d/initos-bench":            "MODULES=most\n",
	}
	return mkinitramfs(b, k, conf, files, filepath.Join(dir, "initrd-initramfs-tools.img"))
}

// mkinitramfs adds files (mode 0755) to the initramfs-tools
// configuration conf and builds its initrd into out for kernel k.
func mkinitramfs(b *testing.B, k vmtest.Kernel, conf string, files map[string]string, out string) []byte {
	for name, data := range files {
		p := filepath.Join(conf, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if o, err := exec.Command("mkinitramfs", "-d", conf, "-o", out, k.Version).CombinedOutput(); err != nil {
		b.Fatalf("mkinitramfs: %v\n%s", err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

const peerHook = `#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
copy_exec /sbin/cryptsetup /sbin
manual_add_modules dm_crypt xts btrfs
mkdir -p "$DESTDIR/etc"
cp "$CONFDIR/initos-bench/root.key" "$DESTDIR/etc/root.key"
cp "$CONFDIR/initos-bench/uuid" "$DESTDIR/etc/root.uuid"
`

const peerScript = `#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
uuid=$(cat /etc/root.uuid)
modprobe -q dm_crypt
wait_for_udev 10
i=0
while [ ! -e "/dev/disk/by-uuid/$uuid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cryptsetup open --key-file /etc/root.key --allow-discards "/dev/disk/by-uuid/$uuid" cryptroot
`
