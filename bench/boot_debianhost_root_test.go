package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"initos/internal/bootdisk"
)

// debianPeer is the Debian side of BenchmarkBootDebianhost: the root's
// kernel and the initramfs-tools initrd made in it.
type debianPeer struct {
	kernel  string // the image's /boot/vmlinuz-RELEASE, copied out
	release string
	initrd  []byte
	rootRel string // the root subvolume, relative to the top level
}

// debianMachineID is the root's machine id: set, so that neither boot
// is systemd's first boot (the image ships an empty one).
var debianMachineID = []byte{0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9, 0x0a}

// debianMarkerUnit prints the marker once multi-user.target is reached:
// the root's init's start and multi-user.target's, in microseconds of
// CLOCK_MONOTONIC (from the kernel's start).
const debianMarkerUnit = `[Unit]
Description=InitOS benchmark marker
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "initos-bench: userspace=$(systemctl show -P UserspaceTimestampMonotonic) multi-user=$(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target)" >/dev/console'

[Install]
WantedBy=multi-user.target
`

// debianAnalyzeUnit prints, once the boot has finished (the marker's
// job included), systemd's critical chain to multi-user.target and the
// slowest units, then the end line: where the root's time went, outside
// the measured span. Then it powers the machine off: a clean shutdown,
// as a VM killed after the marker leaves a btrfs log tree that Debian's
// kernel then failed to replay (EINVAL) at the next boot's mount.
const debianAnalyzeUnit = `[Unit]
Description=InitOS benchmark: where the boot's time went
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh -c 'systemctl is-system-running --wait >/dev/null; { systemd-analyze critical-chain --no-pager multi-user.target; systemd-analyze blame --no-pager | head -n 12; echo "initos-bench: end"; } >/dev/console 2>&1; systemctl poweroff --no-block'

[Install]
WantedBy=multi-user.target
`

// debianChrootScript installs initramfs-tools and cryptsetup-initramfs in
// the root ($1), sets the volume up in crypttab with a key file that
// KEYFILE_PATTERN copies into the initrd, runs mkinitramfs for the
// image's kernel ($2) into /tmp/initrd.img, and takes back what a boot of
// the root must not see (crypttab, the key file, apt's lists, the
// initrd the package's trigger made): both boots run the same root.
const debianChrootScript = `set -e
R=$1 REL=$2 UUID=$3
export DEBIAN_FRONTEND=noninteractive
chroot $R apt-get update -qq
chroot $R apt-get install -y -qq --no-install-recommends initramfs-tools cryptsetup-initramfs >/dev/null
mkdir -p $R/etc/cryptsetup-keys.d
echo "cryptroot UUID=$UUID /etc/cryptsetup-keys.d/cryptroot.key luks,discard,initramfs" >$R/etc/crypttab
echo 'KEYFILE_PATTERN="/etc/cryptsetup-keys.d/*.key"' >>$R/etc/cryptsetup-initramfs/conf-hook
echo UMASK=0077 >>$R/etc/initramfs-tools/initramfs.conf
chroot $R mkinitramfs -o /tmp/initrd.img $REL
rm -f $R/etc/crypttab $R/etc/cryptsetup-keys.d/cryptroot.key $R/boot/initrd.img-* $R/initrd.img $R/initrd.img.old
chroot $R apt-get clean
rm -rf $R/var/lib/apt/lists/*
`

// debianPrepareRoot readies the root in the mounted top level for both
// boots (host keys, machine id, the marker unit) and makes the Debian
// initrd in a chroot of it. dir receives the kernel.
func debianPrepareRoot(top, dir, uuid string, keyfile []byte) (*debianPeer, error) {
	rel := filepath.Join(bootdisk.StoreDir, "roots", "host")
	r := filepath.Join(top, rel)
	// ssh-keygen -A on TCG takes minutes: a provisioned host has its keys.
	if out, err := exec.Command("ssh-keygen", "-A", "-f", r).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen -A: %w\n%s", err, out)
	}
	files := map[string]string{
		"etc/machine-id": fmt.Sprintf("%x\n", debianMachineID),
		"etc/systemd/system/initos-bench-marker.service":  debianMarkerUnit,
		"etc/systemd/system/initos-bench-analyze.service": debianAnalyzeUnit,
		"etc/cryptsetup-keys.d/cryptroot.key":             string(keyfile),
	}
	for name, data := range files {
		os.MkdirAll(filepath.Join(r, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(r, name), []byte(data), 0o600); err != nil {
			return nil, err
		}
		os.Chmod(filepath.Join(r, name), 0o644)
	}
	os.Chmod(filepath.Join(r, "etc/cryptsetup-keys.d/cryptroot.key"), 0o600)
	wants := filepath.Join(r, "etc/systemd/system/multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	for _, u := range []string{"initos-bench-marker.service", "initos-bench-analyze.service"} {
		if err := os.Symlink("../"+u, filepath.Join(wants, u)); err != nil {
			return nil, err
		}
	}
	mods, _ := filepath.Glob(filepath.Join(r, "usr/lib/modules/*"))
	if len(mods) != 1 {
		return nil, fmt.Errorf("root: %d kernels in /usr/lib/modules, want 1", len(mods))
	}
	p := &debianPeer{release: filepath.Base(mods[0]), rootRel: rel, kernel: filepath.Join(dir, "vmlinuz")}
	if err := debianChroot(r, func() error {
		out, err := exec.Command("bash", "-c", debianChrootScript, "chroot", r, p.release, uuid).CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install initramfs-tools cryptsetup-initramfs; mkinitramfs: %w\n%s", err, out)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var err error
	if p.initrd, err = os.ReadFile(filepath.Join(r, "tmp/initrd.img")); err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(r, "tmp/initrd.img"))
	k, err := os.ReadFile(filepath.Join(r, "boot", "vmlinuz-"+p.release))
	if err != nil {
		return nil, err
	}
	return p, os.WriteFile(p.kernel, k, 0o644)
}

// debianChroot runs f with /proc, /sys, /dev and a /run (holding the
// host's resolv.conf where the root's /etc/resolv.conf points) mounted in
// the root r, and unmounts them after.
func debianChroot(r string, f func() error) error {
	mounts := [][]string{
		{"-t", "proc", "proc", r + "/proc"},
		{"-t", "sysfs", "sys", r + "/sys"},
		{"--bind", "/dev", r + "/dev"},
		{"-t", "tmpfs", "tmpfs", r + "/run"},
	}
	var done []string
	defer func() {
		for i := len(done) - 1; i >= 0; i-- {
			exec.Command("umount", done[i]).Run()
		}
	}()
	for _, m := range mounts {
		if out, err := exec.Command("mount", m...).CombinedOutput(); err != nil {
			return fmt.Errorf("mount %s: %w\n%s", strings.Join(m, " "), err, out)
		}
		done = append(done, m[len(m)-1])
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	os.MkdirAll(r+"/run/systemd/resolve", 0o755)
	if err := os.WriteFile(r+"/run/systemd/resolve/stub-resolv.conf", resolv, 0o644); err != nil {
		return err
	}
	return f()
}
