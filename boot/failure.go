package boot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Failure is the state of a failed boot: what the control plane serves
// (`initos ctl status`) and what the failure line says.
type Failure struct {
	Step    string        // the step that failed
	Err     error         // why (a *StepError)
	At      time.Duration // time since the kernel started
	Mode    string        // boot or install
	Slot    string        // "a", "b" or "" (unknown)
	Release string        // the running kernel
	// PCRs are the expected and actual values of the PCRs that kept the
	// TPM from unsealing, when the failure is a PCR mismatch.
	PCRs []PCRMismatch
	// Current are the current values of PCRs 7, 11 and 15 (sha256),
	// when the TPM could be read.
	Current map[int]string
	Volumes []VolumeStatus // the LUKS2 volumes found and their state
	Log     []string       // the boot log so far
}

// VolumeStatus is one LUKS2 volume as the control plane shows it.
type VolumeStatus struct {
	Device string // the partition, e.g. /dev/nvme0n1p3
	UUID   string // the LUKS UUID
	Name   string // the dm-crypt name once opened
	State  string // found, unlocked, open, failed
	Error  string `json:",omitempty"`
}

// Line is the one line a failure prints: which step failed and why.
func (f *Failure) Line() string {
	return fmt.Sprintf("FAILED: %v", f.Err)
}

// Action is what a FailureHandler decides.
type Action int

const (
	Reboot   Action = iota // reboot the machine
	PowerOff               // power it off
	Retry                  // run the flow again from the failed step
)

// String names the action ("reboot", "power off", "retry").
func (a Action) String() string {
	switch a {
	case Reboot:
		return "reboot"
	case PowerOff:
		return "power off"
	case Retry:
		return "retry"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// FailureHandler is called when a step fails, with the failure state; the
// control plane implements it (serving SSH until an operator acts or ctx
// ends). It is never a shell.
type FailureHandler interface {
	HandleFailure(ctx context.Context, b *Boot, f *Failure) Action
}

// FailureHandlerFunc adapts a function to FailureHandler.
type FailureHandlerFunc func(ctx context.Context, b *Boot, f *Failure) Action

// HandleFailure implements FailureHandler.
func (fn FailureHandlerFunc) HandleFailure(ctx context.Context, b *Boot, f *Failure) Action {
	return fn(ctx, b, f)
}

// WaitAndReboot is the failure handler without a control plane: it waits
// for the configured failure timeout (or until ctx ends) and reboots; a
// negative timeout waits for ctx only.
var WaitAndReboot FailureHandler = FailureHandlerFunc(func(ctx context.Context, b *Boot, f *Failure) Action {
	timeout := b.failureTimeout()
	if timeout < 0 {
		b.Log.Printf("waiting (no reboot: failure_timeout_sec is -1)")
		<-ctx.Done()
		return Reboot
	}
	b.Log.Printf("rebooting in %v", timeout)
	select {
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	return Reboot
})

// failure assembles the Failure of err.
func (b *Boot) failure(err error) *Failure {
	f := &Failure{Err: err, At: sinceBoot(), Mode: string(b.Settings.Mode), Slot: b.Slot, Release: b.Release}
	var se *StepError
	if errors.As(err, &se) {
		f.Step = se.Step
	}
	var pm *PCRMismatchError
	if errors.As(err, &pm) {
		f.PCRs = pm.PCRs
	}
	for _, v := range b.Volumes {
		f.Volumes = append(f.Volumes, v.status())
	}
	if b.tpm != nil {
		if vals, err := b.tpm.ReadPCRs([]int{7, 11, 15}); err == nil {
			f.Current = map[int]string{}
			for i, v := range vals {
				f.Current[i] = hex.EncodeToString(v)
			}
		}
	}
	f.Log = b.Log.Lines()
	return f
}

// failureTimeout is the config's, or the default before the config is read.
func (b *Boot) failureTimeout() time.Duration {
	if b.Config == nil {
		return 5 * time.Minute
	}
	return b.Config.FailureTimeout()
}
