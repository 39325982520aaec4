//go:build !vmguest

package boot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
// anti-rollback minimum) runs A/B upgrades in one qemu run through the
// firmware, guest reboots allowed, an i6300esb watchdog, and the upgrade
// media (initos, the UKIs, the modules image) on a third disk. The root's
// init (internal/bootdisk/abinit) drives it; ten firmware boots:
//
//  1. slot A (the production UKI, version 0): boot entries, `initos
//     upgrade --from good.efi` stages slot B and sets BootNext; reboot;
//  2. slot B, its trial: the initrd records "trying", arms the watchdog
//     and hands it over; `initos bless` puts B first in BootOrder and
//     raises the TPM minimum to 2; `initos upgrade` stages bad.efi, whose
//     signed command line names a missing init, into slot A;
//  3. A's trial: the root step fails, the initrd records it, reboots;
//  4. B (BootOrder): status names the failed trial; stages panic.efi (its
//     kernel panics before initos-init: rdinit= missing, panic=5);
//  5. A's trial: kernel panic, reboot after 5 s;
//  6. B: the trial recorded as failed in "firmware or kernel"; stages
//     hang.efi (watchdog 30 s);
//  7. A's trial: the root's init never blesses; the watchdog resets;
//  8. B: the trial failed "after the initrd", the watchdog named; writes
//     the production UKI (version 0 < minimum 2) over A's, BootNext A;
//  9. A: the rollback step refuses to unseal, says why, reboots;
//  10. B: power off.
//
// The first four boots always run; boots 5-10 when -timeout allows.
func (f *vmFixture) abUpgrade(t *testing.T, vm *vmtest.VM) {
	if err := f.disks[0].FormatESP(2, "ESP-B", nil); err != nil {
		t.Fatal(err)
	}
	base := "console=ttyS0 panic=-1 no_timer_check quiet"
	files := map[string][]byte{
		"good.efi":                     f.abUKI(t, "ab good", base, 180),
		"bad.efi":                      f.abUKI(t, "ab broken", base+" init=/sbin/missing", 180),
		path.Base(f.modules.Info.File): f.modules.Data,
	}
	// Boots 1-4 take 4 minutes on an idle host, 9 under a load of 15;
	// boots 5-10 as much again. A -timeout too short for them (go test's
	// default 10m, after the other cases) would kill the whole package.
	extended := true
	if d, ok := t.Deadline(); ok && time.Until(d) < 20*time.Minute {
		if time.Until(d) < 10*time.Minute {
			t.Skipf("-timeout leaves %v, too little for the A/B boots (4-20 minutes): run with -timeout 40m (make test)", time.Until(d).Round(time.Minute))
		}
		extended = false
		t.Logf("-timeout leaves %v: boots 5-10 (panic, watchdog, rollback) left out; -timeout 40m (make test) runs them", time.Until(d).Round(time.Minute))
	} else {
		files["panic.efi"] = f.abUKI(t, "ab panic", "console=ttyS0 panic=5 no_timer_check quiet rdinit=/missing", 180)
		files["hang.efi"] = f.abUKI(t, "ab hang", base, 30)
		files["old.efi"] = f.uki
	}
	media := f.abMedia(t, files)
	f.setSecondDisk(false)
	f.setVolume(0, f.g0, f.abRoot(t))

	ctx, cancel := context.WithTimeout(context.Background(), vmTimeout(40*time.Minute))
	defer cancel()
	lines := &lineClock{start: time.Now()}
	res, err := vm.Machine.Boot(ctx, vmtest.BootSpec{Console: lines, QEMUArgs: []string{
		"-action", "reboot=reset", // after -no-reboot: guest reboots go back to the firmware
		"-device", "i6300esb", "-action", "watchdog=reset",
		"-drive", "file=" + media + ",if=virtio,format=raw,readonly=on",
	}})
	console := string(res.Console)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("qemu: %s\nconsole:\n%s", res.CommandLine(), tail(res.Console, 300))
		}
	})
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("A/B run (firmware boots in one qemu run) took %v", res.Elapsed.Round(time.Second))
	lines.report(t)
	f.abCheck(t, console, extended)
}

// abCheck checks the statuses the root printed and the initrd's lines.
// Without extended, only the first four boots ran.
func (f *vmFixture) abCheck(t *testing.T, console string, extended bool) {
	sts, runs := abMarkers(t, console)
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
		{"slot b booted on trial (trying)", func(st *update.Status) bool {
			return st.Active == "b" && st.OnTrial && st.Outcome == "trying" && st.Trial.BootedAt != 0
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
		{"slot a holds a UKI below the minimum", func(st *update.Status) bool {
			u := statusSlot(st, "a")
			return st.Active == "b" && u != nil && u.UKI != nil && u.UKI.Version == 0 && !u.Bootable
		}},
	}
	runs0 := "upgrade exit=0,bless exit=0,upgrade exit=0,upgrade exit=0,upgrade exit=0"
	lines := abLines
	if !extended {
		want, runs0, lines = want[:4], runs0[:len("upgrade exit=0,bless exit=0,upgrade exit=0")], abLines[:6]
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
	if strings.Join(runs, ",") != runs0 {
		t.Errorf("commands = %q, want %q", runs, runs0)
	}
	for _, line := range lines {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks %q", line)
		}
	}
}

// abLines are lines the console must have, the first six from the first
// four boots.
var abLines = []string{
	"initos: trial: this boot is the trial of slot b (from slot a)",
	"initos: trial: watchdog: /dev/watchdog0 armed, timeout 180s",
	"initos: rollback: security version 2, TPM minimum 0",
	"initos: trial: this boot is the trial of slot a (from slot b)",
	"initos: FAILED: root: ",
	"initos: trial: the trial of slot a failed at root: recorded; rebooting now (the firmware falls back to slot b)",
	"Kernel panic - not syncing",
	"initos: trial: watchdog: /dev/watchdog0 armed, timeout 30s",
	"AB-HANG",
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

// lineClock timestamps the root's marker lines as the console streams
// them, for the wall times between the steps of the run.
type lineClock struct {
	start   time.Time
	partial []byte
	marks   []string
	at      []time.Duration // of each mark
}

func (c *lineClock) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(c.partial[:i])
		c.partial = c.partial[i+1:]
		for _, m := range []string{"AB-STATUS", "AB-RUN", "AB-HANG", "AB-ROLLBACK", "Kernel panic", "FAILED: "} {
			if j := strings.Index(line, m); j >= 0 {
				end := min(len(line), j+40)
				c.marks = append(c.marks, fmt.Sprintf("%7.1fs %s", time.Since(c.start).Seconds(), line[j:end]))
				c.at = append(c.at, time.Since(c.start))
				break
			}
		}
	}
}

// report logs the marks, and for each `initos upgrade` the wall time to
// the next root's status: the trial blessed or, for a broken one, back on
// the old slot.
func (c *lineClock) report(t *testing.T) {
	t.Logf("host wall time of each step since qemu started:\n%s", strings.Join(c.marks, "\n"))
	var sum []string
	for i, m := range c.marks {
		if !strings.Contains(m, "AB-RUN upgrade") {
			continue
		}
		for j := i + 1; j < len(c.marks); j++ {
			if strings.Contains(c.marks[j], "AB-STATUS") {
				sum = append(sum, fmt.Sprintf("upgrade %d: %v to the next root's status", len(sum)+1, (c.at[j]-c.at[i]).Round(time.Second)))
				break
			}
		}
	}
	t.Logf("%s", strings.Join(sum, "\n"))
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
