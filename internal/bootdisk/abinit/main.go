// Command abinit is the /sbin/init of the A/B upgrade test root (boot's
// TestVMBoot, "AB upgrade"): it plays the host's side of upgrades with
// the initos CLI from the upgrade media (a FAT filesystem on a disk of its
// own, mounted on /mnt), and decides what to do from `initos slot status`:
//
//   - slot a, no trial record: the installer's boot entries ("InitOS A"
//     first in BootOrder), then `initos upgrade --from /mnt/good.efi`;
//     when the media holds a file "powercut", first `initos upgrade
//     --from /mnt/bad.efi --no-reboot` (BootNext set), then the upgrade
//     of good.efi is stopped (SIGSTOP) while it writes the new UKI and
//     AB-POWERCUT asks the host to kill qemu: nothing is synced;
//   - a trial of this slot: `initos bless`, then `initos upgrade --from
//     /mnt/bad.efi` (a UKI whose trial fails in the initrd); a trial of
//     the build "ab hang" (read from the record first) never blesses: it
//     waits for the watchdog; a trial of "ab health" runs `initos bless
//     --health-cmd "/sbin/init health"`, a gate that fails, and bless
//     reboots;
//   - slot b after a failed trial of a: the next broken build by the
//     failed one's build id (bad → panic.efi → hang.efi → health.efi),
//     then old.efi (a UKI below the TPM's minimum) written straight onto
//     ESP A, as an attacker with root could, and booted once with
//     BootNext;
//   - anything else, or a file missing on the media: power off.
//
// Run as `abinit health` (not process 1), it is the failing health gate.
//
// Each step reboots; every status and command result goes to the console
// on one line after a marker (AB-STATUS, AB-RUN, AB-...), for the test.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/update"
	"initos/update/trial"
)

const media = "/mnt"

var initos = filepath.Join(media, "initos")

// next is the build staged after a failed trial of each build.
var next = map[string]string{"ab broken": "panic.efi", "ab panic": "hang.efi", "ab hang": "health.efi", "ab health": "old.efi"}

func main() {
	if os.Getpid() != 1 && len(os.Args) == 2 && os.Args[1] == "health" {
		fmt.Println("ab health gate: the root's services are not healthy")
		os.Exit(1)
	}
	if err := mountMedia(); err != nil {
		fmt.Printf("AB-ERROR %v\n", err)
		finish(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	if hangTrial() {
		fmt.Println("AB-HANG not blessing: the watchdog the initrd handed over resets the machine")
		hang()
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
		if _, err := os.Stat(filepath.Join(media, "powercut")); err == nil {
			if run("upgrade", "--from", filepath.Join(media, "bad.efi"), "--no-reboot", "--json", "--progress=false") == 0 {
				cutStaging("good.efi")
			}
			break
		}
		stage("good.efi")
	case st.Trial != nil && st.Trial.Slot == st.Active && st.Outcome == "trying" && st.Trial.BuildID == "ab health":
		run("bless", "--health-cmd", "/sbin/init health", "--deadline", "5m", "--json") // reboots
	case st.Trial != nil && st.Trial.Slot == st.Active && st.Outcome == "trying":
		if run("bless", "--health-cmd", initos+" slot status", "--deadline", "5m", "--no-reboot", "--json") != 0 {
			break
		}
		status()
		stage("bad.efi")
	case st.Active == update.SlotB && st.Trial != nil && st.Trial.Slot == update.SlotA && st.Trial.State == trial.Failed:
		if a := slotUKI(st, update.SlotA); a != nil && a.Version < st.MinVersion {
			break // the rollback attempt was made: done
		}
		if n := next[st.Trial.BuildID]; n == "old.efi" {
			rollbackAttempt(n)
		} else if n != "" {
			stage(n)
		}
	}
	finish(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// hangTrial reports whether this boot is the trial of the build "ab
// hang", from the record itself: `initos slot status` may take longer
// than the watchdog's timeout on a loaded host.
func hangTrial() bool {
	vars, err := efivar.OpenEfivarfs("")
	if err != nil {
		return false
	}
	r, err := trial.Read(vars)
	return err == nil && r != nil && r.State == trial.Trying && r.BuildID == "ab hang"
}

// stage runs `initos upgrade --from /mnt/NAME` and reboots into the
// trial; it returns when NAME is not on the media or staging failed.
func stage(name string) {
	p := filepath.Join(media, name)
	if _, err := os.Stat(p); err != nil {
		return
	}
	if run("upgrade", "--from", p, "--no-reboot", "--json", "--progress=false") == 0 {
		finish(unix.LINUX_REBOOT_CMD_RESTART)
	}
}

// mountMedia mounts the whole virtio disk holding a FAT filesystem with
// the initos binary on /mnt, read-only.
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

// status prints (on one line) and returns `initos slot status --json`.
func status() (*update.Status, error) {
	out, err := exec.Command(initos, "slot", "status", "--json").Output()
	var line bytes.Buffer
	if json.Compact(&line, out) != nil {
		line.Write(bytes.ReplaceAll(out, []byte("\n"), nil))
	}
	fmt.Printf("AB-STATUS %s\n", line.Bytes())
	if err != nil {
		return nil, fmt.Errorf("initos slot status: %w", err)
	}
	var st update.Status
	return &st, json.Unmarshal(out, &st)
}

func slotUKI(st *update.Status, slot string) *update.UKI {
	for _, s := range st.Slots {
		if s.Slot == slot {
			return s.UKI
		}
	}
	return nil
}

// run runs `initos ARGS`, prints its stdout (JSON, on one line) after a
// marker, and returns its exit status. AB-CMD marks its start (the
// test's wall times begin there).
func run(args ...string) int {
	fmt.Printf("AB-CMD initos %s\n", strings.Join(args, " "))
	cmd := exec.Command(initos, args...)
	var out, line bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stdout
	err := cmd.Run()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		fmt.Printf("AB-ERROR initos %s: %v\n", args[0], err)
	}
	if json.Compact(&line, out.Bytes()) != nil {
		line.Write(bytes.ReplaceAll(out.Bytes(), []byte("\n"), []byte(" ")))
	}
	fmt.Printf("AB-RUN %s exit=%d %s\n", args[0], code, line.Bytes())
	return code
}

// installEntries does what the installer does for the firmware: boot
// entries "InitOS A" and "InitOS B", A first in BootOrder.
func installEntries() error {
	sys, err := update.Discover(update.Paths{})
	if err != nil {
		return err
	}
	return sys.EnsureEntries()
}

// rollbackAttempt writes the UKI name (signed, but of a retired security
// version) over slot a's UKI, bypassing `initos upgrade` (which refuses
// it), and boots it once: its initrd must refuse to unseal.
func rollbackAttempt(name string) {
	uki, err := os.ReadFile(filepath.Join(media, name))
	if err != nil {
		return
	}
	sys, err := update.Discover(update.Paths{})
	if err != nil {
		fmt.Printf("AB-ERROR %v\n", err)
		return
	}
	esps := sys.SlotESPs(update.SlotA)
	dir := "/run/ab-esp"
	os.MkdirAll(dir, 0o755)
	if len(esps) == 0 || unix.Mount(esps[0].Device, dir, "vfat", 0, "") != nil {
		fmt.Printf("AB-ERROR mount slot a's ESP\n")
		return
	}
	err = os.WriteFile(filepath.Join(dir, update.UKIPath), uki, 0o644)
	unix.Sync()
	unix.Unmount(dir, 0)
	n, err2 := sys.EnsureEntry(update.SlotA)
	if err != nil || err2 != nil || efivar.SetBootNext(sys.Vars, n) != nil {
		fmt.Printf("AB-ERROR rollback attempt: %v %v\n", err, err2)
		return
	}
	fmt.Printf("AB-ROLLBACK %s written over slot a's UKI, BootNext = %s\n", name, efivar.BootName(n))
	finish(unix.LINUX_REBOOT_CMD_RESTART)
}

// finish syncs and reboots or powers off (process 1 never exits).
func finish(cmd int) {
	unix.Sync()
	unix.Reboot(cmd)
	hang()
}

// hang sleeps forever (select{} would be a deadlock: the runtime would
// exit process 1).
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}
