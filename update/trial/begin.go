package trial

import (
	"fmt"
	"time"

	"initos/efivar"
)

// Boot is what the initrd knows about the boot it runs: its slot (from
// the ESP it was loaded from) and its UKI's signed config.
type Boot struct {
	Slot            string // "a" or "b"; "" when the boot has no slot
	SecurityVersion uint64
	BuildID         string
	Kernel          string    // uname -r
	Now             time.Time // zero: time.Now()
	// WatchdogReset is set when the watchdog driver reports that it reset
	// the machine last time (WDIOF_CARDRESET): it explains an ended trial.
	WatchdogReset bool
}

func (b Boot) now() int64 {
	if b.Now.IsZero() {
		return time.Now().Unix()
	}
	return b.Now.Unix()
}

// Outcome is what Begin found and did.
type Outcome struct {
	// Trial is set when this boot is a trial of its slot: the initrd keeps
	// the watchdog armed across switch_root, and a failing step records
	// itself (Fail) and reboots at once.
	Trial bool
	// Ended is the other slot's trial that this boot found unfinished and
	// recorded as failed (nil if none): the initrd logs it.
	Ended *Record
	// Record is the record after Begin (nil if there is none).
	Record *Record
}

// Begin is the initrd's call, once the slot and the config are known and
// efivarfs is mounted, before switch_root:
//
//   - a record of this slot in state staged: this boot is its trial; the
//     record becomes trying, with the boot time;
//   - a record of this slot still trying: a trial that was started but not
//     blessed is booting again (a bless cut short after it changed
//     BootOrder): still a trial, so that bless finishes it;
//   - a record of the other slot in state staged or trying: that trial
//     failed (the firmware fell back to this slot); the record becomes
//     failed with the reason;
//   - anything else (no record, blessed, failed): an ordinary boot, nothing
//     is written.
func Begin(s efivar.Store, b Boot) (Outcome, error) {
	r, err := Read(s)
	if err != nil || r == nil {
		return Outcome{}, err
	}
	out := Outcome{Record: r}
	switch {
	case b.Slot == "" || r.State.Ended():
		return out, nil
	case r.Slot == b.Slot && r.State == Trying:
		out.Trial = true
		return out, nil
	case r.Slot == b.Slot:
		r.State, r.BootedAt = Trying, b.now()
		if r.BuildID != "" && b.BuildID != r.BuildID {
			r.Reason = fmt.Sprintf("booted build %q, staged build %q", b.BuildID, r.BuildID)
		}
		out.Trial = true
	default:
		r.State, r.EndedAt = Failed, b.now()
		r.Step, r.Reason = failure(r, b)
		out.Ended = r
	}
	if err := Write(s, r); err != nil {
		return out, err
	}
	return out, nil
}

// failure explains a trial of the other slot that this boot found
// unfinished, from how far the record got.
func failure(r *Record, b Boot) (step, reason string) {
	if r.BootedAt == 0 {
		return "firmware or kernel", fmt.Sprintf("slot %s was staged but its initrd never started the trial: the firmware refused or could not load its UKI, "+
			"or its kernel panicked or hung before initos-init ran; the firmware fell back to slot %s", r.Slot, b.Slot)
	}
	why := "its boot failed or hung after that (an initrd step, the root's init or its health gate) and the machine was reset"
	if b.WatchdogReset {
		why = "the hardware watchdog reset the machine (a hang after that point: the initrd, the root's early boot or the kernel)"
	}
	return "after the initrd", fmt.Sprintf("slot %s's initrd started the trial at %s but it was never blessed: %s; the firmware fell back to slot %s",
		r.Slot, time.Unix(r.BootedAt, 0).UTC().Format(time.RFC3339), why, b.Slot)
}

// Fail records that the trial boot of b.Slot failed at an initrd step
// (before rebooting to the old slot). It does nothing when the record is
// not this slot's trial.
func Fail(s efivar.Store, b Boot, step string, cause error) error {
	r, err := Read(s)
	if err != nil || r == nil || r.Slot != b.Slot || r.State.Ended() {
		return err
	}
	r.State, r.EndedAt = Failed, b.now()
	r.Step, r.Reason = "initrd: "+step, cause.Error()
	return Write(s, r)
}
