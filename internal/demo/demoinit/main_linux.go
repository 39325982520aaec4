// Command demoinit is the /init of the InitOS demo (`make demo`,
// docs/demo.md): a static Go binary, no shell, booted inside a signed UKI
// by OVMF. Every step prints one line starting with "initos-demo:" on the
// console; on any error it prints "initos-demo: ERROR: ..." and powers off.
//
//  1. mounts /proc, /sys and /dev (devtmpfs), loads virtio_pci,
//     virtio_blk, dm-verity and efivarfs with their dependencies from the
//     initrd's /lib/modules/VERSION (package kmod), mounts efivarfs;
//  2. in setup mode (SetupMode=1) it enrolls the owner keys shipped as
//     /keys/db.auth, /keys/KEK.auth and /keys/PK.auth (efivar.Enroll) and
//     reboots: the firmware enforces Secure Boot from the next boot;
//  3. otherwise it prints the Secure Boot state and db, maps the data disk
//     (initos.data=, default /dev/vdb: data followed by its verity hash
//     tree at initos.hashoffset=N, root hash initos.verity=HEX, both on
//     the kernel command line, which is inside the signed UKI) with
//     device-mapper (dm-verity, packages verity and dm), reads it all
//     through /dev/mapper/initos-demo and prints the byte count, the
//     SHA-256 of the contents and the root hash, or, when dm-verity fails
//     a read with EIO (the disk was changed), "initos-demo: REFUSED: ..."
//     naming the block; then powers off.
package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"initos/dm"
	"initos/efivar"
	"initos/kmod"
	"initos/verity"
)

// modules are what the demo needs beyond the kernel's built-ins.
var modules = []string{"virtio_pci", "virtio_blk", "dm-verity", "efivarfs"}

const mapName = "initos-demo"

func main() {
	reboot := unix.LINUX_REBOOT_CMD_POWER_OFF
	restart, err := run()
	if err != nil {
		say("ERROR: %v", err)
	} else if restart {
		reboot = unix.LINUX_REBOOT_CMD_RESTART
	}
	unix.Sync()
	_ = unix.Reboot(reboot)
	select {} // never return: the kernel panics when init exits
}

// say prints one "initos-demo:" line on the console.
func say(format string, args ...any) {
	fmt.Printf("initos-demo: "+format+"\n", args...)
}

// run does the demo; restart reports that keys were enrolled.
func run() (restart bool, err error) {
	if err := setup(); err != nil {
		return false, err
	}
	store, err := efivar.OpenEfivarfs("")
	if err != nil {
		return false, err
	}
	st, err := efivar.ReadStatus(store)
	if err != nil {
		return false, fmt.Errorf("read secure boot state: %w", err)
	}
	if st.SetupMode == 1 {
		return true, enroll(store)
	}
	say("Secure Boot: SecureBoot=%d SetupMode=%d db=%s", st.SecureBoot, st.SetupMode, subjects(st.DB))
	args, err := cmdline()
	if err != nil {
		return false, err
	}
	return false, readVerity(args)
}

// setup mounts the pseudo file systems and loads the modules.
func setup() error {
	for _, m := range []struct{ fs, dir string }{{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"}} {
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dir, err)
		}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	say("kernel %s up, /init is the InitOS demo (Go, no shell)", release)
	ix, err := kmod.Open(filepath.Join("/lib/modules", release))
	if err != nil {
		return err
	}
	start := time.Now()
	if err := ix.LoadAll(modules...); err != nil {
		return err
	}
	say("loaded modules %s with their dependencies in %v", strings.Join(modules, ", "), time.Since(start).Round(time.Millisecond))
	if err := unix.Mount("efivarfs", efivar.DefaultEfivarfs, "efivarfs", 0, ""); err != nil {
		return fmt.Errorf("mount efivarfs on %s: %w", efivar.DefaultEfivarfs, err)
	}
	return nil
}

// enroll writes the owner keys shipped in the initrd.
func enroll(store efivar.Store) error {
	say("firmware is in setup mode (SetupMode=1): enrolling the owner keys")
	var p [3][]byte
	for i, name := range []string{"db", "KEK", "PK"} {
		b, err := os.ReadFile("/keys/" + name + ".auth")
		if err != nil {
			return fmt.Errorf("read owner keys: %w", err)
		}
		p[i] = b
	}
	if err := efivar.Enroll(store, p[0], p[1], p[2]); err != nil {
		return err
	}
	st, err := efivar.ReadStatus(store)
	if err != nil {
		return fmt.Errorf("read secure boot state: %w", err)
	}
	say("enrolled db, KEK and PK (db=%s); SetupMode=%d now: rebooting into Secure Boot", subjects(st.DB), st.SetupMode)
	return nil
}

func subjects(certs []*x509.Certificate) string {
	var s []string
	for _, c := range certs {
		s = append(s, strings.ReplaceAll(c.Subject.String(), " ", "_"))
	}
	if len(s) == 0 {
		return "(empty)"
	}
	return strings.Join(s, ",")
}

// cmdline returns the key=value words of the kernel command line.
func cmdline() (map[string]string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, f := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m, nil
}

// readVerity maps the data disk with dm-verity and reads all of it.
func readVerity(args map[string]string) error {
	root, err := hex.DecodeString(args["initos.verity"])
	if err != nil || len(root) == 0 {
		return fmt.Errorf("kernel command line: initos.verity=%q: want the root hash in hex", args["initos.verity"])
	}
	off, err := strconv.ParseInt(args["initos.hashoffset"], 10, 64)
	if err != nil || off <= 0 {
		return fmt.Errorf("kernel command line: initos.hashoffset=%q: want a positive byte offset", args["initos.hashoffset"])
	}
	disk := args["initos.data"]
	if disk == "" {
		disk = "/dev/vdb"
	}
	if err := waitFor(disk, 10*time.Second); err != nil {
		return err
	}
	tree, err := openTree(disk, off, root)
	if err != nil {
		return err
	}
	say("%s: verity superblock at %d: %d data blocks of %d bytes, %s, hash tree from block %d",
		disk, off, tree.DataBlocks, tree.DataBlockSize, tree.Hash, tree.HashStartBlock)
	node, err := dm.CreateDevice(mapName, "", true, dm.Verity{
		LegacyFormat: tree.HashType == 0, DataDevice: disk, HashDevice: disk,
		DataBlockSize: tree.DataBlockSize, HashBlockSize: tree.HashBlockSize,
		DataBlocks: tree.DataBlocks, HashStartBlock: tree.HashStartBlock,
		Algorithm: tree.Hash, RootDigest: tree.RootHash, Salt: tree.Salt,
	})
	if err != nil {
		return err
	}
	say("mapped %s (dm-verity, read-only, root hash from the signed kernel command line)", node)
	return readAll(node, tree)
}

func openTree(disk string, off int64, root []byte) (*verity.Result, error) {
	f, err := os.Open(disk)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tree, err := verity.Open(f, off, off, verity.Params{}, root)
	if err != nil {
		return nil, fmt.Errorf("open verity tree on %s: %w", disk, err)
	}
	if tree.DataSize() > off {
		return nil, fmt.Errorf("open verity tree on %s: %d data bytes overlap the hash tree at %d", disk, tree.DataSize(), off)
	}
	return tree, nil
}

// readAll reads the mapped device to the end: dm-verity checks every block
// against the tree, and the tree against the root hash.
func readAll(node string, tree *verity.Result) error {
	f, err := os.Open(node)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	start := time.Now()
	n, err := io.Copy(h, f)
	if errors.Is(err, unix.EIO) {
		say("REFUSED: reading %s failed with EIO at byte %d (data block %d): the disk does not match the root hash, dm-verity returns no data from it",
			node, n, n/int64(tree.DataBlockSize))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s after %d bytes: %w (dm-verity refused a block)", node, n, err)
	}
	if n != tree.DataSize() {
		return fmt.Errorf("read %s: %d bytes, want %d", node, n, tree.DataSize())
	}
	say("SUCCESS: read %d bytes through %s in %v, every block verified; sha256 %x; root hash %s",
		n, node, time.Since(start).Round(time.Millisecond), h.Sum(nil), tree.RootHashHex())
	return nil
}

// waitFor waits for a device node to appear (virtio probing is async).
func waitFor(path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
