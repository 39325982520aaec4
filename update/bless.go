package update

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"time"

	"initos/update/trial"
)

// ErrHealth reports a trial whose health gate failed or timed out.
var ErrHealth = errors.New("health gate failed")

// DefaultDeadline bounds the health gate.
const DefaultDeadline = 2 * time.Minute

// BlessOptions tune Bless.
type BlessOptions struct {
	// Health is the health gate; nil passes at once. It must return
	// when its context ends.
	Health func(ctx context.Context) error
	// Deadline bounds Health; 0 means DefaultDeadline.
	Deadline time.Duration
	// Watchdog is the device the initrd left armed on a trial boot;
	// "" means trial.DefaultWatchdog, "-" none.
	Watchdog string
}

// BlessResult is what Bless found and did.
type BlessResult struct {
	Slot    string `json:"slot"`    // the booted slot
	Trial   bool   `json:"trial"`   // this boot was a trial of it
	Blessed bool   `json:"blessed"` // the gate passed and the slot is now the default
	// State is the trial record's state afterwards ("" without a record).
	State         trial.State `json:"state,omitempty"`
	Reason        string      `json:"reason,omitempty"`
	MinBefore     uint64      `json:"min_version_before"`
	MinAfter      uint64      `json:"min_version_after"`
	Watchdog      string      `json:"watchdog"` // what became of the watchdog
	HealthSeconds float64     `json:"health_seconds"`
}

// Bless ends the trial of the booted slot: it takes over the watchdog the
// initrd left armed (feeding it), runs the health gate within the
// deadline, and then
//
//   - on success: puts the slot first in BootOrder, raises the TPM's
//     anti-rollback minimum to the slot's security version, records the
//     trial as blessed, and disarms the watchdog — in that order, so that
//     a power cut in between leaves a trial that the next boot blesses
//     again, and never a raised minimum with the old slot still the default;
//   - on failure: records the trial as failed (step "health gate") and
//     returns ErrHealth, leaving the watchdog armed; the caller reboots,
//     and the firmware boots BootOrder's slot, the old one.
//
// A boot that is not a trial (no record for this slot, or one already
// ended) only hands the watchdog back (disarms it).
func Bless(ctx context.Context, sys *System, o BlessOptions) (*BlessResult, error) {
	if err := sys.check(); err != nil {
		return nil, err
	}
	active, _, err := sys.ActiveSlot()
	if err != nil {
		return nil, err
	}
	res := &BlessResult{Slot: active}
	wd := takeWatchdog(o.Watchdog, res)
	rec, err := trial.Read(sys.Vars)
	if err != nil {
		wd.Disarm()
		return res, err
	}
	if rec == nil || rec.Slot != active || rec.State.Ended() {
		res.Watchdog = finishWatchdog(wd, true, res.Watchdog)
		if rec != nil && rec.Slot == active {
			res.State = rec.State
		}
		sys.logf("bless: slot %s is not on trial: nothing to bless", active)
		return res, nil
	}
	res.Trial = true
	if err := runHealth(ctx, o, res); err != nil {
		res.Watchdog = finishWatchdog(wd, false, res.Watchdog)
		return res, sys.failTrial(rec, res, err)
	}
	if err := sys.blessTrial(rec, res); err != nil {
		res.Watchdog = finishWatchdog(wd, false, res.Watchdog)
		return res, err
	}
	res.Watchdog = finishWatchdog(wd, true, res.Watchdog)
	return res, nil
}

// runHealth runs the health gate within the deadline.
func runHealth(ctx context.Context, o BlessOptions, res *BlessResult) error {
	if o.Health == nil {
		return nil
	}
	d := o.Deadline
	if d <= 0 {
		d = DefaultDeadline
	}
	hctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	err := o.Health(hctx)
	res.HealthSeconds = time.Since(start).Seconds()
	switch {
	case err != nil && hctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%w: no answer within the deadline of %v (%v)", ErrHealth, d, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrHealth, err)
	}
	return nil
}

// failTrial records a failed health gate.
func (s *System) failTrial(rec *trial.Record, res *BlessResult, cause error) error {
	rec.State, rec.EndedAt = trial.Failed, trial.Unix(s.now())
	rec.Step, rec.Reason = "health gate", cause.Error()
	res.State, res.Reason = rec.State, rec.Reason
	if err := trial.Write(s.Vars, rec); err != nil {
		return errors.Join(cause, err)
	}
	s.logf("bless: slot %s failed its health gate: %v; BootOrder still starts with slot %s", rec.Slot, cause, Other(rec.Slot))
	return cause
}

// blessTrial makes the slot the default, raises the minimum, records it.
func (s *System) blessTrial(rec *trial.Record, res *BlessResult) error {
	if err := s.setDefault(rec.Slot); err != nil {
		return err
	}
	v := rec.SecurityVersion
	if u, err := s.slotUKI(rec.Slot); err == nil {
		v = u.Version
	}
	if s.OpenTPM != nil {
		var err error
		if res.MinBefore, res.MinAfter, err = s.raiseMin(v); err != nil {
			return err
		}
	}
	rec.State, rec.EndedAt, rec.Reason = trial.Blessed, trial.Unix(s.now()), ""
	res.Blessed, res.State = true, rec.State
	if err := trial.Write(s.Vars, rec); err != nil {
		return err
	}
	s.logf("bless: slot %s blessed: first in BootOrder, anti-rollback minimum %d -> %d", rec.Slot, res.MinBefore, res.MinAfter)
	return nil
}

// slotUKI reads the UKI of slot's first ESP (signature not checked).
func (s *System) slotUKI(slot string) (*UKI, error) {
	esps := s.SlotESPs(slot)
	if len(esps) == 0 {
		return nil, fmt.Errorf("slot %s has no ESP", slot)
	}
	dir, release, err := s.Mounter.Mount(esps[0], false)
	if err != nil {
		return nil, err
	}
	defer release()
	b, err := readBounded(joinESP(dir, UKIPath), MaxUKISize)
	if err != nil {
		return nil, err
	}
	return InspectUKI(b, nil)
}

// takeWatchdog opens the watchdog the initrd left armed, and feeds it.
func takeWatchdog(dev string, res *BlessResult) *trial.Watchdog {
	if dev == "-" {
		res.Watchdog = "not used"
		return nil
	}
	wd, err := trial.ArmWatchdog(dev, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.Watchdog = "none"
	case errors.Is(err, syscall.EBUSY):
		res.Watchdog = "held by another process (the root's init): left to it"
	case err != nil:
		res.Watchdog = err.Error()
	default:
		res.Watchdog = "taken over"
	}
	return wd
}

// finishWatchdog disarms it, or hands it back armed.
func finishWatchdog(wd *trial.Watchdog, disarm bool, state string) string {
	if wd == nil {
		return state
	}
	if !disarm {
		wd.Handover()
		return "left armed: it resets the machine unless rebooted first"
	}
	if err := wd.Disarm(); err != nil {
		return err.Error()
	}
	return "disarmed"
}
