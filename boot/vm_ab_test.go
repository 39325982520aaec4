//go:build !vmguest

package boot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/internal/bootdisk"
	"initos/internal/vmtest"
	"initos/update"
	"initos/update/trial"
)

// abVersion is the security version of the upgrades: above the
// production UKI's (0), so bless raises the TPM minimum.
const abVersion = 2

// abUpgrade (the last case of TestVMBoot: it raises the TPM's
// anti-rollback minimum) runs a whole A/B cycle in one qemu run through
// the firmware, guest reboots allowed, an i6300esb watchdog, and the
// upgrade media (initos, the UKIs, the modules image) on a third disk.
// The root's init (internal/bootdisk/abinit) drives it:
//
//  1. slot A (the production UKI): boot entries, `initos upgrade --from
//     good.efi` stages slot B and sets BootNext; reboot;
//  2. slot B, its trial: the initrd records "trying", arms the watchdog
//     and hands it over; `initos bless` puts B first in BootOrder and
//     raises the TPM minimum; `initos upgrade --from bad.efi` stages a
//     UKI whose initrd fails (its signed command line names a missing
//     init) into slot A; reboot;
//  3. slot A, its trial: the root step fails, the initrd records the
//     failure and reboots at once;
//  4. the firmware boots BootOrder's first, slot B: `initos slot status`
//     names the failed trial; power off.
func (f *vmFixture) abUpgrade(t *testing.T, vm *vmtest.VM) {
	good := f.abUKI(t, "ab good", "")
	bad := f.abUKI(t, "ab broken", " init=/sbin/missing")
	f.setSecondDisk(false)
	f.setVolume(0, f.g0, f.abRoot(t))
	media := f.abMedia(t, map[string][]byte{"good.efi": good, "bad.efi": bad, path.Base(f.modules.Info.File): f.modules.Data})

	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(30*time.Minute))
	defer cancel()
	var live bytes.Buffer
	res, err := vm.Machine.Boot(ctx, vmtest.BootSpec{Console: &live, QEMUArgs: []string{
		"-action", "reboot=reset", // after -no-reboot: guest reboots go back to the firmware
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-drive", "file=" + media + ",if=virtio,format=raw,readonly=on",
	}})
	console := string(res.Console)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu: %s\nconsole:\n%s", res.CommandLine(), tail(res.Console, 200))
		}
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("A/B cycle (4 firmware boots in one qemu run) took %v", res.Elapsed.Round(time.Second))
	sts, runs := abMarkers(t, console)
	if len(sts) != 4 {
		t.Fatalf("%d AB-STATUS lines, want 4 (slot a; slot b on trial; b blessed; b after a's failed trial)", len(sts))
	}
	check := func(i int, what string, ok bool) {
		if !ok {
			b, _ := json.Marshal(sts[i])
			t.Errorf("status %d: want %s; got %s", i+1, what, b)
		}
	}
	check(0, "slot a, no trial", sts[0].Active == "a" && sts[0].Trial == nil)
	check(1, "slot b booted on trial (trying)", sts[1].Active == "b" && sts[1].OnTrial && sts[1].Outcome == "trying" && sts[1].Trial.BootedAt != 0)
	check(2, "b blessed, default, TPM minimum raised", sts[2].Active == "b" && sts[2].Default == "b" && sts[2].Outcome == "blessed" && sts[2].MinVersion == abVersion)
	check(3, "slot b, default, a's trial failed at the initrd's root step", sts[3].Active == "b" && sts[3].Default == "b" &&
		sts[3].Trial != nil && sts[3].Trial.Slot == "a" && sts[3].Trial.State == trial.Failed &&
		sts[3].Trial.Step == "initrd: root" && strings.Contains(sts[3].Trial.Reason, "/sbin/missing"))
	if want := []string{"upgrade exit=0", "bless exit=0", "upgrade exit=0"}; strings.Join(runs, ",") != strings.Join(want, ",") {
		t.Errorf("commands = %q, want %q", runs, want)
	}
	for _, line := range []string{
		"initos: trial: this boot is the trial of slot b (from slot a)",
		"initos: trial: watchdog: /dev/watchdog0 armed, timeout 180s",
		"initos: rollback: security version 2, TPM minimum 0",
		"initos: trial: this boot is the trial of slot a (from slot b)",
		"initos: FAILED: root: ",
		"initos: trial: the trial of slot a failed at root: recorded; rebooting now (the firmware falls back to slot b)",
		"initos: rollback: security version 2, TPM minimum 2",
	} {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks %q", line)
		}
	}
}

// abUKI builds a signed UKI of security version abVersion, with a
// watchdog timeout for trials and extra on the command line.
func (f *vmFixture) abUKI(t *testing.T, build, extra string) []byte {
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage, cfg.SecurityVersion = build, 1, f.modules.Info, abVersion
	cfg.Watchdog = bootconfig.Watchdog{Device: trial.DefaultWatchdog, TimeoutSec: 180}
	rd, err := bootdisk.Initrd(f.kernel, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	uki, err := bootdisk.UKI(f.kernel.Image, rd, "console=ttyS0 panic=-1 no_timer_check quiet"+extra, f.kernel.Version, f.sb)
	if err != nil {
		t.Fatal(err)
	}
	return uki
}

// abRoot builds the root whose init is abinit.
func (f *vmFixture) abRoot(t *testing.T) string {
	init, err := bootdisk.ABInit()
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(f.dir, "ab0.btrfs")
	if err := bootdisk.BuildRoot(context.Background(), []string{img}, vmSmallMiB, bootdisk.RootSpec{Files: bootdisk.RootFiles(init, nil)}); err != nil {
		t.Fatal(err)
	}
	return img
}

// abMedia makes the upgrade media: a FAT filesystem on a whole disk with
// the initos CLI and files.
func (f *vmFixture) abMedia(t *testing.T, files map[string][]byte) string {
	cli, err := bootdisk.Initos()
	if err != nil {
		t.Fatal(err)
	}
	files["initos"] = cli
	img := filepath.Join(f.dir, "media.img")
	if out, err := exec.Command("mkfs.vfat", "-F", "32", "-n", "ABMEDIA", "-C", img, "131072").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	for name, data := range files {
		p := filepath.Join(f.dir, "media-"+name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mcopy", "-i", img, p, "::/"+name).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v\n%s", name, err, out)
		}
		os.Remove(p)
	}
	return img
}

// abMarkers reads abinit's AB-STATUS documents and AB-RUN results
// ("upgrade exit=0") from the console, in order.
func abMarkers(t *testing.T, console string) (sts []*update.Status, runs []string) {
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if i := strings.Index(line, "AB-ERROR "); i >= 0 {
			t.Errorf("root: %s", line[i:])
		}
		if i := strings.Index(line, "AB-STATUS "); i >= 0 {
			var st update.Status
			if err := json.Unmarshal([]byte(line[i+len("AB-STATUS "):]), &st); err != nil {
				t.Errorf("AB-STATUS %q: %v", line[i:], err)
				continue
			}
			sts = append(sts, &st)
		}
		if i := strings.Index(line, "AB-RUN "); i >= 0 {
			f := strings.Fields(line[i:])
			if len(f) >= 3 {
				runs = append(runs, f[1]+" "+f[2])
			}
		}
	}
	return sts, runs
}
