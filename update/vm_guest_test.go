//go:build vmguest

package update

import (
	"os"
	"strings"
	"testing"
	"time"

	"initos/update/trial"
)

// TestGuestStageVfat stages slot b of the GPT disk /dev/vda: ESPs found
// in sysfs, FAT32 mounted by the kernel, files fsynced and verified from
// the disk; slot a untouched.
func TestGuestStageVfat(t *testing.T) {
	esps, err := FindESPs("/sys", "/dev")
	if err != nil || len(esps) != 2 || esps[0].Device != "/dev/vda1" || esps[1].Device != "/dev/vda2" {
		t.Fatalf("FindESPs = %+v, %v, want /dev/vda1 and /dev/vda2", esps, err)
	}
	db := loadSigner(t, "db")
	m := &KernelMounter{Dir: t.TempDir()}
	h := newHostOn(t, db, "a", esps, m)
	next := newBuild(t, db, 1, "v2")
	res, err := stageFrom(t, h, next.Dir(t), StageOptions{})
	if err != nil {
		t.Fatalf("Stage on vfat: %v", err)
	}
	if res.BytesWritten != int64(2*len(next.UKI)+len(next.Modules)) || res.BootNext != "Boot0001" {
		t.Errorf("Stage = %d bytes, BootNext %s", res.BytesWritten, res.BootNext)
	}
	dir, release, err := m.Mount(esps[1], false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if d2, r2, err := m.Mount(esps[1], false); err != nil || d2 != dir {
		t.Errorf("Mount while mounted = %s, %v, want the existing mount %s", d2, err, dir)
	} else {
		r2()
	}
	if _, _, err := m.Mount(esps[1], true); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Mount writable over a read-only mount = %v, want a refusal", err)
	}
	if b, err := readBack(dir, UKIPath, MaxUKISize); err != nil || string(b) != string(next.UKI) {
		t.Errorf("slot b's UKI after a remount: %d bytes, %v", len(b), err)
	}
	a, releaseA, err := m.Mount(esps[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	if ents, _ := os.ReadDir(a); len(ents) != 0 {
		t.Errorf("slot a's ESP was written: %v", ents)
	}
	st, err := ReadStatus(h.System, StatusOptions{VerifyModules: true})
	if err != nil || st.Slots[1].Modules != "verified" || !st.Slots[1].Bootable {
		t.Errorf("status = %+v, %v", st, err)
	}
}

// TestGuestWatchdog arms the i6300esb with a 2 s timeout and feeds it for
// 5 s, then disarms it: the machine survives both.
func TestGuestWatchdog(t *testing.T) {
	var dev string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(trial.DefaultWatchdog); err == nil {
			dev = trial.DefaultWatchdog
			break
		}
	}
	if dev == "" {
		t.Fatalf("no %s: the i6300esb driver did not bind", trial.DefaultWatchdog)
	}
	w, err := trial.ArmWatchdog(dev, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if w.Timeout != 2*time.Second {
		t.Errorf("timeout = %v, want 2s", w.Timeout)
	}
	if _, err := trial.ArmWatchdog(dev, 0); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("a second opener = %v, want EBUSY", err)
	}
	time.Sleep(5 * time.Second)
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if trial.WatchdogReset("/sys", dev) {
		t.Errorf("bootstatus says the watchdog reset this boot's machine")
	}
}
