// Command abinit is the /sbin/init of the A/B upgrade test root (boot's
// TestVMBoot, "A/B upgrade"): it plays the host's side of upgrades, with
// the initos CLI from the upgrade media (a FAT filesystem on a disk of its
// own, mounted on /mnt), and decides what to do from `initos slot status`:
//
//   - slot a, no trial record: the installer's boot entries ("InitOS A"
//     first in BootOrder), then `initos upgrade --from /mnt/good.efi`, reboot;
//   - a trial of this slot (trying): `initos bless`, then `initos upgrade
//     --from /mnt/bad.efi` (a UKI whose trial fails in the initrd), reboot;
//   - anything else: power off.
//
// Every status and command result goes to the console after a marker
// (AB-STATUS, AB-RUN), for the test to read.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/update"
)

const media = "/mnt"

var initos = filepath.Join(media, "initos")

func main() {
	if err := mountMedia(); err != nil {
		fmt.Printf("AB-ERROR %v\n", err)
		finish(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	st, err := status()
	switch {
	case err != nil:
		fmt.Printf("AB-ERROR %v\n", err)
	case st.Trial == nil && st.Active == update.SlotA:
		if err := installEntries(); err != nil {
			fmt.Printf("AB-ERROR boot entries: %v\n", err)
			break
		}
		if run("upgrade", "--from", filepath.Join(media, "good.efi"), "--no-reboot", "--json", "--progress=false") == 0 {
			finish(unix.LINUX_REBOOT_CMD_RESTART)
		}
	case st.Trial != nil && st.Trial.Slot == st.Active && st.Outcome == "trying":
		if run("bless", "--health-cmd", initos+" slot status", "--deadline", "5m", "--no-reboot", "--json") != 0 {
			break
		}
		status()
		if _, err := os.Stat(filepath.Join(media, "bad.efi")); err == nil &&
			run("upgrade", "--from", filepath.Join(media, "bad.efi"), "--no-reboot", "--json", "--progress=false") == 0 {
			finish(unix.LINUX_REBOOT_CMD_RESTART)
		}
	}
	finish(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// mountMedia mounts the first whole virtio disk holding a FAT filesystem
// with the initos binary on /mnt, read-only.
func mountMedia() error {
	disks, _ := filepath.Glob("/dev/vd?")
	slices.Reverse(disks) // the media is the last disk
	for _, d := range disks {
		if unix.Mount(d, media, "vfat", unix.MS_RDONLY, "") != nil {
			continue
		}
		if _, err := os.Stat(initos); err == nil {
			return nil
		}
		unix.Unmount(media, 0)
	}
	return fmt.Errorf("no upgrade media among %q", disks)
}

// status prints and returns `initos slot status --json`.
func status() (*update.Status, error) {
	out, err := exec.Command(initos, "slot", "status", "--json").Output()
	fmt.Printf("AB-STATUS %s\n", bytes.TrimSpace(out))
	if err != nil {
		return nil, fmt.Errorf("initos slot status: %w", err)
	}
	var st update.Status
	return &st, json.Unmarshal(out, &st)
}

// run runs `initos ARGS`, prints its stdout (JSON) after a marker, and
// returns its exit status.
func run(args ...string) int {
	cmd := exec.Command(initos, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stdout
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		fmt.Printf("AB-ERROR initos %s: %v\n", args[0], err)
	}
	fmt.Printf("AB-RUN %s exit=%d %s\n", args[0], code, bytes.TrimSpace(out.Bytes()))
	return code
}

// installEntries does what the installer does for the firmware: boot
// entries "InitOS A" and "InitOS B", A first in BootOrder.
func installEntries() error {
	sys, err := update.Discover(update.Paths{})
	if err != nil {
		return err
	}
	a, err := sys.EnsureEntry(update.SlotA)
	if err != nil {
		return err
	}
	b, err := sys.EnsureEntry(update.SlotB)
	if err != nil {
		return err
	}
	order, err := efivar.BootOrder(sys.Vars)
	if err != nil {
		return err
	}
	order = slices.DeleteFunc(order, func(n uint16) bool { return n == a || n == b })
	return efivar.SetBootOrder(sys.Vars, append([]uint16{a, b}, order...))
}

// finish syncs and reboots or powers off (process 1 never exits).
func finish(cmd int) {
	unix.Sync()
	unix.Reboot(cmd)
	select {}
}
