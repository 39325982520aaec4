package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"initos/efivar"
	"initos/internal/progress"
)

// Step names, in the order Run performs them.
const (
	StepPreflight   = "preflight"
	StepDisks       = "disks"
	StepSecureBoot  = "secureboot"
	StepGPT         = "gpt"
	StepESP         = "esp"
	StepLUKS        = "luks"
	StepBtrfs       = "btrfs"
	StepImage       = "image"
	StepConfig      = "config"
	StepFinish      = "finish"
	StepBootEntries = "bootentries"
)

// Steps lists the step names in order.
var Steps = []string{StepPreflight, StepDisks, StepSecureBoot, StepGPT, StepESP, StepLUKS,
	StepBtrfs, StepImage, StepConfig, StepFinish, StepBootEntries}

// StepError reports the step (and disk) an install failed in. The disks
// are left so that a rerun continues.
type StepError struct {
	Step string
	Disk string // "" when not about one disk
	Err  error
}

func (e *StepError) Error() string {
	if e.Disk != "" {
		return fmt.Sprintf("install: step %s: %s: %v", e.Step, e.Disk, e.Err)
	}
	return fmt.Sprintf("install: step %s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrRebootNeeded reports that the owner's Secure Boot keys were enrolled
// in setup mode: Secure Boot (and the PCR 7 value the TPM policy binds)
// takes effect from the next boot, so the install continues after a
// reboot into the installer.
var ErrRebootNeeded = errors.New("Secure Boot keys enrolled in setup mode: reboot into the installer to continue with Secure Boot on")

// Options are the machine-facing parts of an install. The zero value
// installs on the running system.
type Options struct {
	System System
	// EFI is the UEFI variable store; nil opens efivarfs at
	// Config.EFIVars (no store when it is not mounted).
	EFI efivar.Store
	// Enroll enrolls the TPM on each volume; nil with the TPM enabled is
	// an error in the luks step.
	Enroll EnrollFunc
	// MkfsBtrfs is the mkfs.btrfs program (default: from $PATH).
	MkfsBtrfs string
	// WorkDir is where the new btrfs is mounted (default a directory
	// under /run).
	WorkDir string
	// Out receives the plan and the step lines (default io.Discard).
	Out io.Writer
	// ShowRecoveryKey hands the recovery key over, before the install is
	// marked complete (default: printed on Out). Not called when
	// Config.RecoveryKey.Hide.
	ShowRecoveryKey func(key string) error
	// Progress is a bar over the whole install (nil: none).
	Progress *progress.Bar
	// AfterStep runs after each step that completed; an error stops the
	// install there (tests cut the power in it).
	AfterStep func(step string) error
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run installs InitOS as cfg says, step by step (Steps). It returns the
// summary, also with an error (the steps done so far). Errors are
// *StepError, or ErrNoConsent, *RefusedError, ErrRebootNeeded inside one.
func Run(ctx context.Context, cfg *Config, opts Options) (*Summary, error) {
	c := cfg.withDefaults()
	r := newRun(&c, opts)
	defer r.cleanup()
	if err := c.validate(); err != nil {
		return r.sum, &StepError{Step: StepPreflight, Err: err}
	}
	r.bar().Describe("install")
	for _, s := range r.steps() {
		if err := ctx.Err(); err != nil {
			return r.sum, &StepError{Step: s.name, Err: err}
		}
		r.bar().Describe(s.name)
		start := r.now()
		status, err := s.fn(ctx)
		r.sum.addStep(s.name, status, r.now().Sub(start))
		if err != nil {
			var se *StepError
			if errors.As(err, &se) {
				return r.sum, err
			}
			return r.sum, &StepError{Step: s.name, Err: err}
		}
		r.bar().Add(1)
		if r.opts.AfterStep != nil {
			if err := r.opts.AfterStep(s.name); err != nil {
				return r.sum, &StepError{Step: s.name, Err: err}
			}
		}
	}
	r.bar().Finish()
	r.sum.Elapsed = r.now().Sub(r.start).Round(time.Millisecond).String()
	return r.sum, nil
}

// step is one named step; it returns its status for the summary
// ("done", "skipped: why", "already done").
type step struct {
	name string
	fn   func(ctx context.Context) (string, error)
}

func (r *run) steps() []step {
	return []step{
		{StepPreflight, r.preflight}, {StepDisks, r.disks}, {StepSecureBoot, r.secureBoot},
		{StepGPT, r.gpt}, {StepESP, r.esp}, {StepLUKS, r.luks}, {StepBtrfs, r.btrfs},
		{StepImage, r.image}, {StepConfig, r.config}, {StepFinish, r.finish},
		{StepBootEntries, r.bootEntries},
	}
}

func (r *run) bar() *progress.Bar { return r.opts.Progress }

func (r *run) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}

func (r *run) logf(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

// diskErr wraps err as a failure of step on disk d.
func diskErr(step string, d *PlannedDisk, err error) error {
	return &StepError{Step: step, Disk: fmt.Sprintf("%s (%s)", d.Path, d.ID), Err: err}
}
