package update

import (
	"context"
	"errors"
	"fmt"

	"initos/efivar"
	"initos/update/trial"
)

// ErrRollbackRefused reports that the other slot cannot be made the
// default: it cannot boot or unseal, or holds an untried build.
var ErrRollbackRefused = errors.New("rollback refused")

// RollbackResult is what Rollback did.
type RollbackResult struct {
	From string `json:"from"` // the booted slot
	To   string `json:"to"`   // the slot made the default
	// EndedTrial is set when the booted slot's unblessed trial was
	// recorded as failed ("rolled back").
	EndedTrial bool `json:"ended_trial"`
}

// Rollback makes the other slot the default again (first in BootOrder)
// after checking that it can boot and unseal: its UKI accepted by the
// firmware's db, its modules image matching its root hash, its security
// version not below the TPM's minimum (a slot retired by anti-rollback
// cannot get the disk key any more, and is refused). A trial of the
// booted slot that was not blessed is recorded as failed. The caller
// reboots. A slot that holds a staged or failed upgrade (not the build
// that ran before) is refused unless force is set.
func Rollback(ctx context.Context, sys *System, force bool) (*RollbackResult, error) {
	if err := sys.check(); err != nil {
		return nil, err
	}
	active, _, err := sys.ActiveSlot()
	if err != nil {
		return nil, err
	}
	res := &RollbackResult{From: active, To: Other(active)}
	st, err := ReadStatus(sys, StatusOptions{VerifyModules: true})
	if err != nil {
		return res, err
	}
	if r := st.Trial; r != nil && r.Slot == res.To && r.State != trial.Blessed && !force {
		return res, fmt.Errorf("%w: slot %s holds build %q of a %s upgrade, not the build that ran before it (--force to roll back anyway)",
			ErrRollbackRefused, res.To, r.BuildID, r.State)
	}
	for _, ss := range st.Slots {
		if ss.Slot == res.To && !ss.Bootable {
			return res, fmt.Errorf("%w: slot %s cannot boot: %s", ErrRollbackRefused, res.To, ss.Problem)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := sys.setDefault(res.To); err != nil {
		return res, err
	}
	if st.Next != "" {
		if err := sys.Vars.Delete("BootNext", efivar.GlobalVariable); err != nil {
			return res, fmt.Errorf("clear BootNext: %w", err)
		}
	}
	if r := st.Trial; r != nil && r.Slot == active && !r.State.Ended() {
		r.State, r.EndedAt, r.Step, r.Reason = trial.Failed, trial.Unix(sys.now()), "rollback", "rolled back by the operator (initos slot rollback)"
		if err := trial.Write(sys.Vars, r); err != nil {
			return res, err
		}
		res.EndedTrial = true
	}
	sys.logf("rollback: slot %s is the default again (first in BootOrder); reboot to run it", res.To)
	return res, nil
}
