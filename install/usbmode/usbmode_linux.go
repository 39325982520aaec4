// Package usbmode runs the unattended install of an InitOS USB installer
// (install.BuildUSB) in initos-init's install mode (initos.mode=install):
// it opens the stick's recovery image through dm-verity with the root
// hash from the signed initrd config, mounts it as a read-only root with
// /dev, /proc, /sys, a tmpfs /run and the stick's ESP (at
// /run/initos/usb) in it, and runs `initos install --config
// /run/initos/usb/initos/install.json` there (chroot). The installer's
// exit status says what the initrd does next: power off (installed),
// reboot (Secure Boot keys were enrolled: run again), or stay (failed).
//
// It needs only dm, verity and golang.org/x/sys, so it is small enough
// for initos-init; the installer itself (go-diskfs, image pulls, LUKS2,
// mkfs.btrfs) lives in the recovery root.
//
// Left out: a recovery image elsewhere than partition 2 of the stick,
// and the root shell without an install config (Shell gives one when the
// recovery root has /bin/sh; the initrd decides whether to offer it).
package usbmode

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"initos/dm"
	"initos/verity"
)

// Paths inside the recovery root, and the mapping.
const (
	USBDir     = "/run/initos/usb"               // the stick's ESP
	ConfigPath = USBDir + "/initos/install.json" // the install config (install.USBConfigPath)
	Installer  = "/usr/bin/initos"               // the installer
	MapperName = "initos-recovery"               // dm-verity mapping of the recovery image
	DefaultDir = "/run/initos/recovery"          // where the recovery root is mounted
)

const (
	exitReboot = 4 // initos install: Secure Boot keys enrolled, run again
	recoveryNo = 2 // partition number of the recovery image on the stick
	sysBlock   = "/sys/block"
	devDir     = "/dev"
	rootFlags  = unix.MS_RDONLY | unix.MS_NODEV
	bindFlags  = unix.MS_BIND | unix.MS_REC
)

// Outcome is what the initrd does after the install.
type Outcome int

// Outcomes.
const (
	PowerOff Outcome = iota // installed (or found installed)
	Reboot                  // run again after a reboot
	NoConfig                // the stick has no install config
)

// Env says where things are.
type Env struct {
	Disk     string    // the stick: the disk holding the ESP we booted from (/dev/sdb)
	ESP      string    // where that ESP is mounted
	RootHash string    // the recovery image's verity root hash (hex), from the signed config
	Dir      string    // where to mount the recovery root (default DefaultDir)
	Console  io.Writer // the installer's output (default os.Stdout)
	Args     []string  // extra arguments for initos install
}

// Run opens the recovery root and runs the install from the stick's
// config. The error names what failed; the mounts stay for a shell.
func Run(ctx context.Context, env Env) (Outcome, error) {
	if env.Dir == "" {
		env.Dir = DefaultDir
	}
	if _, err := os.Stat(filepath.Join(env.ESP, strings.TrimPrefix(ConfigPath, USBDir))); err != nil {
		return NoConfig, nil
	}
	if err := Mount(env); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, Installer, append([]string{"install", "--config", ConfigPath, "--progress=false"}, env.Args...)...)
	cmd.SysProcAttr = &unix.SysProcAttr{Chroot: env.Dir}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux"}
	out := env.Console
	if out == nil {
		out = os.Stdout
	}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return PowerOff, nil
	case errors.As(err, &ee) && ee.ExitCode() == exitReboot:
		return Reboot, nil
	case errors.As(err, &ee):
		return 0, fmt.Errorf("install: initos install exited with status %d", ee.ExitCode())
	}
	return 0, fmt.Errorf("install: run %s in the recovery root: %w", Installer, err)
}

// Mount opens the recovery image (partition 2 of env.Disk) through
// dm-verity and mounts it at env.Dir with /dev, /proc, /sys, /run and the
// stick's ESP inside. Mounting again is a no-op.
func Mount(env Env) error {
	if env.Dir == "" {
		env.Dir = DefaultDir
	}
	if isMountpoint(filepath.Join(env.Dir, USBDir)) {
		return nil
	}
	node, err := openRecovery(env.Disk, env.RootHash)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(env.Dir, 0o755); err != nil {
		return fmt.Errorf("recovery root: %w", err)
	}
	if err := unix.Mount(node, env.Dir, "squashfs", rootFlags, ""); err != nil {
		return fmt.Errorf("mount the recovery image %s on %s: %w", node, env.Dir, err)
	}
	return mountInside(env)
}

// mountInside makes /dev, /proc, /sys, a tmpfs /run and the ESP visible
// in the recovery root.
func mountInside(env Env) error {
	for _, m := range []struct{ src, dst, fstype string }{
		{"/dev", "dev", ""}, {"/proc", "proc", ""}, {"/sys", "sys", ""}, {"tmpfs", "run", "tmpfs"},
	} {
		dst := filepath.Join(env.Dir, m.dst)
		flags := uintptr(bindFlags)
		if m.fstype != "" {
			flags = unix.MS_NOSUID | unix.MS_NODEV
		}
		if err := unix.Mount(m.src, dst, m.fstype, flags, ""); err != nil {
			return fmt.Errorf("recovery root: mount %s on %s: %w (the image needs the directory)", m.src, dst, err)
		}
	}
	usb := filepath.Join(env.Dir, USBDir)
	if err := os.MkdirAll(usb, 0o755); err != nil {
		return fmt.Errorf("recovery root: %w", err)
	}
	if err := unix.Mount(env.ESP, usb, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("recovery root: bind the stick's ESP %s on %s: %w", env.ESP, usb, err)
	}
	return nil
}

func isMountpoint(p string) bool {
	var a, b unix.Stat_t
	return unix.Stat(p, &a) == nil && unix.Stat(filepath.Dir(p), &b) == nil && a.Dev != b.Dev
}

// openRecovery maps partition 2 of disk with dm-verity: the squashfs, its
// tree at the 4 KiB aligned end of the squashfs, the root hash given.
func openRecovery(disk, rootHex string) (string, error) {
	root, err := hex.DecodeString(rootHex)
	if err != nil || len(root) == 0 {
		return "", fmt.Errorf("recovery image: root hash %q from the signed config is not hex", rootHex)
	}
	part, err := partition(disk, recoveryNo)
	if err != nil {
		return "", err
	}
	f, err := os.Open(part)
	if err != nil {
		return "", fmt.Errorf("recovery image: %w", err)
	}
	defer f.Close()
	var sb [48]byte
	if _, err := f.ReadAt(sb[:], 0); err != nil || !bytes.Equal(sb[:4], []byte("hsqs")) {
		return "", fmt.Errorf("recovery image %s: not a squashfs (%v)", part, err)
	}
	off := (int64(binary.LittleEndian.Uint64(sb[40:])) + 4095) &^ 4095
	vsb, err := verity.ReadSuperblock(f, off)
	if err != nil {
		return "", fmt.Errorf("recovery image %s: no verity superblock at %d: %w", part, off, err)
	}
	r, err := vsb.Result(off, root)
	if err != nil {
		return "", fmt.Errorf("recovery image %s: %w", part, err)
	}
	if _, err := os.Stat(dm.NodePath(MapperName)); err == nil {
		dm.RemoveDevice(MapperName)
	}
	return dm.CreateDevice(MapperName, "", true, dm.Verity{DataDevice: part, HashDevice: part, DataBlockSize: r.DataBlockSize,
		HashBlockSize: r.HashBlockSize, DataBlocks: r.DataBlocks, HashStartBlock: r.HashStartBlock, Algorithm: r.Hash,
		RootDigest: r.RootHash, Salt: r.Salt, LegacyFormat: r.HashType == 0, OnCorruption: dm.CorruptionEIO})
}

// partition returns /dev/NAME of partition n of disk, from sysfs.
func partition(disk string, n int) (string, error) {
	name := filepath.Base(disk)
	ents, err := os.ReadDir(filepath.Join(sysBlock, name))
	if err != nil {
		return "", fmt.Errorf("recovery image: disk %s: %w", disk, err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysBlock, name, e.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == fmt.Sprint(n) {
			return filepath.Join(devDir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("recovery image: disk %s has no partition %d", disk, n)
}
