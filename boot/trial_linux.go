package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"initos/bootconfig"
	"initos/efivar"
	"initos/update/trial"
)

// trialPanicSec is the kernel.panic timeout a trial boot sets when the
// command line did not: a panicking trial kernel must come back to the
// firmware, which then boots the old slot.
const trialPanicSec = 10

// beginTrial is the "trial" step (docs/update.md): with the slot known
// and efivarfs mounted, read the trial record (InitOSTrial). A record
// staged for this slot makes this boot its trial: the record becomes
// "trying" (the attempt is recorded before anything else can fail),
// kernel.panic is set, and the hardware watchdog is armed and later
// handed to the root (bless disarms it). A record of the other slot still
// staged or trying is a trial that never blessed: it is recorded as
// failed, with how far it got. Any other boot writes nothing.
func (b *Boot) beginTrial(ctx context.Context) error {
	if b.Settings.Mode == bootconfig.ModeInstall || b.Slot == "" {
		return nil
	}
	vars, err := b.openVars()
	if err != nil {
		b.Log.Printf("trial: %v: no trial record read", err)
		return nil
	}
	b.vars = vars
	dev := b.trialWatchdogDevice()
	if r, _ := trial.Read(vars); r != nil && r.Slot != b.Slot && r.State == trial.Trying &&
		!exists(filepath.Join(b.paths.Sys, "class/watchdog", filepath.Base(dev))) {
		// The other slot's trial ended unblessed: whether the watchdog
		// reset it, its driver (loaded by coldplug) tells.
		b.pendingBegin = true
		b.Log.Printf("trial: slot %s's trial ended unblessed: recorded once coldplug loaded the watchdog driver", r.Slot)
		return nil
	}
	return b.begin(dev)
}

// begin runs trial.Begin and, on a trial, sets kernel.panic and arms the
// watchdog.
func (b *Boot) begin(dev string) error {
	out, err := trial.Begin(b.vars, trial.Boot{Slot: b.Slot, SecurityVersion: b.Config.SecurityVersion,
		BuildID: b.Config.BuildID, Kernel: b.Release, WatchdogReset: trial.WatchdogReset(b.paths.Sys, dev)})
	if out.Ended != nil {
		b.Log.Printf("trial: the trial of slot %s (build %q) failed: %s: %s", out.Ended.Slot, out.Ended.BuildID, out.Ended.Step, out.Ended.Reason)
	}
	if err != nil {
		// A record that cannot be read or written must not keep a good
		// slot from booting; a trial then ends as "firmware or kernel".
		b.Log.Printf("trial: %v", err)
		return nil
	}
	if !out.Trial {
		return nil
	}
	b.Trial = true
	b.Log.Printf("trial: this boot is the trial of slot %s (from slot %s): recorded %q; a failure reboots to slot %s",
		b.Slot, out.Record.From, out.Record.State, trial.Other(b.Slot))
	if err := trial.SetPanicReboot(b.paths.Proc, trialPanicSec); err != nil {
		b.Log.Printf("trial: %v", err)
	}
	b.armTrialWatchdog(dev)
	return nil
}

// openVars opens efivarfs (tests replace it by a directory).
func (b *Boot) openVars() (efivar.Store, error) {
	if b.vars != nil {
		return b.vars, nil
	}
	dir := filepath.Join(b.paths.Sys, efivarsDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("not booted through UEFI (no %s)", dir)
	}
	return efivar.OpenEfivarfs(dir)
}

// trialWatchdogDevice is the config's watchdog, else the first one.
func (b *Boot) trialWatchdogDevice() string {
	if d := b.Config.Watchdog.Device; d != "" {
		return d
	}
	return trial.DefaultWatchdog
}

// armTrialWatchdog arms dev for the trial unless a watchdog is armed
// already. A device that is not there yet (its driver comes with
// coldplug) is armed when coldplug ends.
func (b *Boot) armTrialWatchdog(dev string) {
	if b.watchdog != nil {
		b.Log.Printf("trial: watchdog armed already, kept across switch_root")
		return
	}
	if !exists(dev) {
		b.pendingWatchdog = dev
		b.Log.Printf("trial: %s not there yet: armed when coldplug ends", dev)
		return
	}
	b.armWatchdog(dev, "trial: ")
}

// afterColdplug records the other slot's failed trial and arms the
// trial's watchdog, when they waited for the watchdog's driver.
func (b *Boot) afterColdplug() {
	if b.pendingBegin {
		b.pendingBegin = false
		b.begin(b.trialWatchdogDevice())
	}
	dev := b.pendingWatchdog
	if dev == "" {
		return
	}
	b.pendingWatchdog = ""
	if !exists(dev) {
		b.Log.Printf("trial: no watchdog %s after coldplug: a hang of this trial needs a power cycle", dev)
		return
	}
	b.armWatchdog(dev, "trial: ")
}

// failTrial records a failed step of a trial boot (InitOSTrial: failed,
// "initrd: STEP") so that the old slot, which the firmware boots after
// the reboot, reports it.
func (b *Boot) failTrial(f *Failure) {
	tb := trial.Boot{Slot: b.Slot, SecurityVersion: b.Config.SecurityVersion, BuildID: b.Config.BuildID, Kernel: b.Release}
	cause := f.Err
	var se *StepError
	if errors.As(cause, &se) {
		cause = se.Err
	}
	if err := trial.Fail(b.vars, tb, f.Step, cause); err != nil {
		b.Log.Printf("trial: recording the failure: %v", err)
		return
	}
	b.Log.Printf("trial: the trial of slot %s failed at %s: recorded; rebooting now (the firmware falls back to slot %s)", b.Slot, f.Step, trial.Other(b.Slot))
}

// checkRollback is the "rollback" step, before any unseal: the UKI's
// signed security version must not be below the TPM's anti-rollback
// minimum (NV index tpm2.RollbackIndex, defined with minimum 0 when
// missing). The TPM itself enforces it too, for UKIs signed with the
// version (PolicyNV); this check says why, before trying.
func (b *Boot) checkRollback(ctx context.Context) error {
	rc, ok := b.tpm.(rollbackChecker)
	if !ok || b.tpm == nil {
		return nil // no TPM: unlock says so
	}
	min, err := rc.CheckRollback(b.Config.SecurityVersion)
	if err != nil {
		return err
	}
	b.Log.Printf("rollback: security version %d, TPM minimum %d", b.Config.SecurityVersion, min)
	return nil
}

// rollbackChecker is a TPM that holds the anti-rollback index.
type rollbackChecker interface {
	// CheckRollback returns the minimum, or a *trial.RollbackError when
	// version is below it.
	CheckRollback(version uint64) (min uint64, err error)
}

func (d *deviceTPM) CheckRollback(version uint64) (uint64, error) {
	st, err := trial.CheckRollback(d.t, 0, version, true)
	return st.Min, err
}
