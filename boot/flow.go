package boot

import (
	"context"
	"errors"
	"time"
)

// Step is one named step of the boot flow. Its name appears in the log,
// in errors ("unlock: volume 3f2a...: PCR 7 mismatch") and in the Failure
// the control plane serves.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// StepError is the error of a failed step.
type StepError struct {
	Step string
	Err  error
}

// Error returns "step: error".
func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }

// Unwrap returns the step's error.
func (e *StepError) Unwrap() error { return e.Err }

// Flow is the state machine: it runs its steps in order, logs each with
// its duration, and stops at the first failure.
type Flow struct {
	Steps []Step
	Log   *Logger
	clock func() time.Duration

	done []string // names of the steps that succeeded
}

// Run runs the steps from the first one not yet done. A failing step
// returns a *StepError; Run can then be called again (after the control
// plane fixed what failed) and resumes at that step.
func (f *Flow) Run(ctx context.Context) error {
	clock := f.clock
	if clock == nil {
		clock = sinceBoot
	}
	// Indexed: a step may append the steps that follow it (the config
	// step chooses between the boot and the install steps).
	for len(f.done) < len(f.Steps) {
		s := f.Steps[len(f.done)]
		if err := ctx.Err(); err != nil {
			return &StepError{s.Name, err}
		}
		start := clock()
		err := s.Run(ctx)
		took := (clock() - start).Round(time.Microsecond)
		if err != nil {
			var se *StepError
			if !errors.As(err, &se) || se.Step != s.Name {
				err = &StepError{s.Name, err}
			}
			f.Log.Printf("%s: stopped after %v", s.Name, took)
			return err
		}
		f.Log.Printf("%s: done in %v", s.Name, took)
		f.done = append(f.done, s.Name)
	}
	return nil
}

// Done returns the names of the steps that succeeded, in order.
func (f *Flow) Done() []string { return append([]string(nil), f.done...) }

// Next returns the name of the next step to run, "" when all are done.
func (f *Flow) Next() string {
	if len(f.done) == len(f.Steps) {
		return ""
	}
	return f.Steps[len(f.done)].Name
}
