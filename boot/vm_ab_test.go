//go:build !vmguest

package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// anti-rollback minimum) runs A/B upgrades through the firmware, guest
// reboots allowed, an i6300esb watchdog, and the upgrade media (initos,
// the UKIs, the modules image) on a third disk. The root's init
// (internal/bootdisk/abinit) drives it; two qemu runs on the same disks,
// variable store and TPM state, thirteen firmware boots:
//
//  1. slot A (the production UKI, version 0): boot entries; `initos
//     upgrade --from bad.efi --no-reboot` stages slot B (BootNext set);
//     `initos upgrade --from good.efi` is stopped while it writes B's new
//     UKI and qemu is killed: a power cut mid-write (first qemu run);
//  2. slot A again (second qemu run: BootNext was cleared before the
//     writes, the half-staged B is not tried): no trial recorded, B still
//     holds the last complete staging; the rerun of the upgrade keeps the
//     modules image already there, writes the UKI, sets BootNext; reboot;
//  3. slot B, its trial: the initrd records "trying", arms the watchdog
//     and hands it over; `initos bless` puts B first in BootOrder and
//     raises the TPM minimum to 2; `initos upgrade` stages bad.efi, whose
//     signed command line names a missing init, into slot A;
//  4. A's trial: the root step fails, the initrd records it, reboots;
//  5. B (BootOrder): status names the failed trial; stages panic.efi (its
//     kernel panics before initos-init: rdinit= missing, panic=5);
//  6. A's trial: kernel panic, reboot after 5 s;
//  7. B: the trial recorded as failed in "firmware or kernel"; stages
//     hang.efi (watchdog 30 s);
//  8. A's trial: the root's init never blesses; the watchdog resets;
//  9. B: the trial failed "after the initrd", the watchdog named; stages
//     health.efi;
//  10. A's trial: `initos bless --health-cmd` fails the gate, records it
//     and reboots;
//  11. B: the trial failed at "health gate"; writes the production UKI
//     (version 0 < minimum 2) over A's, BootNext A;
//  12. A: the rollback step refuses to unseal, says why, reboots;
//  13. B: power off.
//
// The first five boots always run; boots 6-13 when -timeout allows.
func (f *vmFixture) abUpgrade(t *testing.T, vm *vmtest.VM) {
	if err := f.disks[0].FormatESP(2, "ESP-B", nil); err != nil {
		t.Fatal(err)
	}
	base := "console=ttyS0 panic=-1 no_timer_check quiet"
	files := map[string][]byte{
		"good.efi":                     f.abUKI(t, "ab good", base, 180),
		"bad.efi":                      f.abUKI(t, "ab broken", base+" init=/sbin/missing", 180),
		"powercut":                     []byte("removed from the media for the second qemu run\n"),
		path.Base(f.modules.Info.File): f.modules.Data,
	}
	// Boots 1-5 take 5 minutes on an idle host, 11 under a load of 15;
	// boots 6-13 as much again. A -timeout too short for them (go test's
	// default 10m, after the other cases) would kill the whole package.
	extended := true
	if d, ok := t.Deadline(); ok && time.Until(d) < 24*time.Minute {
		if time.Until(d) < 12*time.Minute {
			t.Skipf("-timeout leaves %v, too little for the A/B boots (5-24 minutes): run with -timeout 40m (make test)", time.Until(d).Round(time.Minute))
		}
		extended = false
		t.Logf("-timeout leaves %v: boots 6-13 (panic, watchdog, health gate, rollback) left out; -timeout 40m (make test) runs them", time.Until(d).Round(time.Minute))
	} else {
		files["panic.efi"] = f.abUKI(t, "ab panic", "console=ttyS0 panic=5 no_timer_check quiet rdinit=/missing", 180)
		files["hang.efi"] = f.abUKI(t, "ab hang", base, 30)
		files["health.efi"] = f.abUKI(t, "ab health", base, 180)
		files["old.efi"] = f.uki
	}
	media := f.abMedia(t, files)
	f.setSecondDisk(false)
	f.setVolume(0, f.g0, f.abRoot(t))

	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(45*time.Minute))
	defer cancel()
	lines := &lineClock{start: time.Now()}
	spec := vmtest.BootSpec{Console: lines, QEMUArgs: []string{
		"-action", "reboot=reset", // after -no-reboot: guest reboots go back to the firmware
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-drive", "file=" + media + ",if=virtio,format=raw,readonly=on",
	}}
	cut := f.abPowerCut(t, ctx, vm, spec, lines, media)
	res, err := vm.Machine.Boot(ctx, spec)
	console := cut + string(res.Console)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu: %s\nconsole:\n%s", res.CommandLine(), tail(res.Console, 300))
		}
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("A/B run after the power cut (firmware boots in one qemu run) took %v", res.Elapsed.Round(time.Second))
	lines.report(t)
	f.abCheck(t, console, extended)
}

// errABPowerCut ends the first qemu run of abUpgrade.
var errABPowerCut = errors.New("power cut (AB-POWERCUT)")

// abPowerCut makes the first qemu run: boot 1, killed (SIGKILL, as a
// power cut) as soon as the root says AB-POWERCUT; then it removes the
// request from the media. It returns the run's console.
func (f *vmFixture) abPowerCut(t *testing.T, ctx context.Context, vm *vmtest.VM, spec vmtest.BootSpec, lines *lineClock, media string) string {
	cctx, cut := context.WithCancelCause(ctx)
	defer cut(nil)
	lines.onCut = func() { cut(errABPowerCut) }
	res, err := vm.Machine.Boot(cctx, spec)
	lines.onCut = nil
	if !errors.Is(context.Cause(cctx), errABPowerCut) {
		t.Fatalf("the first A/B run ended without the power cut: %v\nqemu: %s\nconsole:\n%s", err, res.CommandLine(), tail(res.Console, 200))
	}
	cutLine := string(res.Console)
	if i := strings.Index(cutLine, "AB-POWERCUT"); i >= 0 {
		cutLine = strings.TrimSpace(strings.SplitN(cutLine[i:], "\n", 2)[0])
	}
	t.Logf("power cut: qemu killed %v after it started: %s", res.Elapsed.Round(time.Second), cutLine)
	if out, err := exec.Command("mdel", "-i", media, "::/powercut").CombinedOutput(); err != nil {
		t.Fatalf("mdel powercut: %v\n%s", err, out)
	}
	return string(res.Console)
}

// abCheck checks the statuses the root printed and the initrd's lines.
// Without extended, only the first five boots ran.
func (f *vmFixture) abCheck(t *testing.T, console string, extended bool) {
	sts, runs, results := abMarkers(t, console)
	failed := func(st *update.Status, build, step, reason string) bool {
		r := st.Trial
		return st.Active == "b" && st.Default == "b" && r != nil && r.Slot == "a" && r.State == trial.Failed &&
			r.BuildID == build && r.Step == step && strings.Contains(r.Reason, reason)
	}
	want := []struct {
		what string
		ok   func(st *update.Status) bool
	}{
		{"slot a, no trial", func(st *update.Status) bool { return st.Active == "a" && st.Trial == nil }},
		{"after the power cut: slot a, the default, no BootNext, no trial recorded, b holding the last complete staging", func(st *update.Status) bool {
			b := statusSlot(st, "b")
			return st.Active == "a" && st.Default == "a" && st.Next == "" && st.Trial == nil &&
				b != nil && b.UKI != nil && b.UKI.BuildID == "ab broken" && b.Bootable
		}},
		{"slot b booted on trial (trying)", func(st *update.Status) bool {
			return st.Active == "b" && st.OnTrial && st.Outcome == "trying" && st.Trial.BootedAt != 0 && st.Trial.BuildID == "ab good"
		}},
		{"b blessed, default, TPM minimum raised", func(st *update.Status) bool {
			return st.Active == "b" && st.Default == "b" && st.Outcome == "blessed" && st.MinVersion == abVersion
		}},
		{"a's trial failed at the initrd's root step", func(st *update.Status) bool {
			return failed(st, "ab broken", "initrd: root", "/sbin/missing")
		}},
		{"a's trial failed before initos-init (kernel panic)", func(st *update.Status) bool {
			return failed(st, "ab panic", "firmware or kernel", "its initrd never started the trial")
		}},
		{"a's trial failed after the initrd, reset by the watchdog", func(st *update.Status) bool {
			return failed(st, "ab hang", "after the initrd", "hardware watchdog reset the machine")
		}},
		{"slot a booted on trial (build ab health)", func(st *update.Status) bool {
			return st.Active == "a" && st.OnTrial && st.Outcome == "trying" && st.Trial.BuildID == "ab health"
		}},
		{"a's trial failed its health gate", func(st *update.Status) bool {
			return failed(st, "ab health", "health gate", "/sbin/init health\": exit status 1: ab health gate: the root's services are not healthy")
		}},
		{"slot a holds a UKI below the minimum", func(st *update.Status) bool {
			u := statusSlot(st, "a")
			return st.Active == "b" && u != nil && u.UKI != nil && u.UKI.Version == 0 && !u.Bootable
		}},
	}
	runs0 := []string{"upgrade exit=0", "upgrade exit=0", "bless exit=0", "upgrade exit=0", "upgrade exit=0", "upgrade exit=0", "upgrade exit=0"}
	lines := abLines
	if !extended {
		want, runs0, lines = want[:5], runs0[:4], abLines[:7]
	}
	if len(sts) != len(want) {
		t.Errorf("%d AB-STATUS lines, want %d", len(sts), len(want))
	}
	for i, w := range want {
		if i < len(sts) && !w.ok(sts[i]) {
			b, _ := json.Marshal(sts[i])
			t.Errorf("status %d: want %s; got %s", i+1, w.what, b)
		}
	}
	if strings.Join(runs, ",") != strings.Join(runs0, ",") {
		t.Errorf("commands = %q, want %q", runs, runs0)
	}
	abCheckRerun(t, results)
	for _, line := range lines {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks %q", line)
		}
	}
}

// abCheckRerun checks the upgrade rerun after the power cut (the second
// upgrade result): the modules image staged before the cut is kept, the
// UKI is written at both paths, and BootNext is set.
func abCheckRerun(t *testing.T, results []string) {
	if len(results) < 2 {
		t.Errorf("%d upgrade results, want the rerun after the power cut", len(results))
		return
	}
	var r update.StageResult
	if err := json.Unmarshal([]byte(results[1]), &r); err != nil || r.UKI == nil || len(r.ESPs) != 1 {
		t.Errorf("the rerun's result %q: %v, want one ESP", results[1], err)
		return
	}
	var got []string
	for _, f := range r.ESPs[0].Files {
		got = append(got, fmt.Sprintf("%s written=%v", path.Dir(f.Path), f.Written))
	}
	want := "initos written=false,EFI/Linux written=true,EFI/BOOT written=true"
	if strings.Join(got, ",") != want || r.UKI.BuildID != "ab good" || r.BootNext == "" || r.BytesWritten != 2*r.ESPs[0].Files[1].Bytes {
		t.Errorf("the rerun after the power cut: build %q, files %q, %d bytes written, BootNext %q; want ab good, %q, the UKI twice, set",
			r.UKI.BuildID, got, r.BytesWritten, r.BootNext, want)
	}
}

// abLines are lines the console must have, the first seven from the
// first five boots.
var abLines = []string{
	"AB-POWERCUT initos upgrade stopped while writing /run/initos/update/esp-b-",
	"initos: trial: this boot is the trial of slot b (from slot a)",
	"initos: trial: watchdog: /dev/watchdog0 armed, timeout 180s",
	"initos: rollback: security version 2, TPM minimum 0",
	"initos: trial: this boot is the trial of slot a (from slot b)",
	"initos: FAILED: root: ",
	"initos: trial: the trial of slot a failed at root: recorded; rebooting now (the firmware falls back to slot b)",
	"Kernel panic - not syncing",
	"initos: trial: watchdog: /dev/watchdog0 armed, timeout 30s",
	"AB-HANG",
	"ab health gate: the root's services are not healthy",
	"AB-ROLLBACK old.efi written over slot a's UKI",
	"initos: FAILED: rollback: anti-rollback: this UKI has security version 0, below the minimum 2 recorded in TPM NV index 0x01157647",
}

func statusSlot(st *update.Status, slot string) *update.SlotStatus {
	for i := range st.Slots {
		if st.Slots[i].Slot == slot {
			return &st.Slots[i]
		}
	}
	return nil
}

// abUKI builds a signed UKI of security version abVersion with the
// command line and the trial watchdog's timeout.
func (f *vmFixture) abUKI(t *testing.T, build, cmdline string, watchdogSec int) []byte {
	cfg := bootconfig.New()
	cfg.BuildID, cfg.FailureTimeoutSec, cfg.ModulesImage, cfg.SecurityVersion = build, 1, f.modules.Info, abVersion
	cfg.Watchdog = bootconfig.Watchdog{Device: trial.DefaultWatchdog, TimeoutSec: watchdogSec}
	rd, err := bootdisk.Initrd(f.kernel, cfg, bootdisk.VMModules)
	if err != nil {
		t.Fatal(err)
	}
	uki, err := bootdisk.UKI(f.kernel.Image, rd, cmdline, f.kernel.Version, f.sb)
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

// abMarkers reads abinit's AB-STATUS documents, AB-RUN results
// ("upgrade exit=0") and the upgrades' JSON results from the console, in
// order.
func abMarkers(t *testing.T, console string) (sts []*update.Status, runs, upgrades []string) {
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
			f := strings.SplitN(line[i:], " ", 4)
			if len(f) >= 3 {
				runs = append(runs, f[1]+" "+f[2])
			}
			if len(f) == 4 && f[1] == "upgrade" {
				upgrades = append(upgrades, f[3])
			}
		}
	}
	return sts, runs, upgrades
}
