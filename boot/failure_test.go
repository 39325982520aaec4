package boot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"initos/bootconfig"
)

func TestFailure(t *testing.T) {
	b := New(Options{})
	b.Config = bootconfig.New()
	b.Settings.Mode = bootconfig.ModeBoot
	b.Slot, b.Release = "a", "6.1.0-test"
	ft := newFakeTPM()
	ft.pcrs[7] = make([]byte, 32)
	b.tpm = ft
	pm := &PCRMismatchError{PCRs: []PCRMismatch{{PCR: 7, Expected: "aa", Actual: "bb", Why: "Secure Boot is off"}}, Err: errors.New("policy")}
	v := &Volume{UUID: "3f2a", Name: "luks-3f2a", State: VolumeFound, Partition: Partition{Device: "/dev/vda3"}}
	b.Volumes = []*Volume{v}
	err := &StepError{StepUnlock, v.fail(pm)}
	b.Log.Printf("something happened")
	f := b.failure(err)
	if f.Step != StepUnlock || f.Mode != "boot" || f.Slot != "a" || f.Release != "6.1.0-test" {
		t.Errorf("failure = %+v", f)
	}
	if diff := cmp.Diff(pm.PCRs, f.PCRs); diff != "" {
		t.Errorf("failure PCRs (-want +got):\n%s", diff)
	}
	wantVol := VolumeStatus{Device: "/dev/vda3", UUID: "3f2a", Name: "luks-3f2a", State: VolumeFailed, Error: pm.Error()}
	if diff := cmp.Diff([]VolumeStatus{wantVol}, f.Volumes); diff != "" {
		t.Errorf("failure volumes (-want +got):\n%s", diff)
	}
	if f.Current[7] != strings.Repeat("00", 32) || len(f.Log) != 1 {
		t.Errorf("failure current PCRs %v, log %q", f.Current, f.Log)
	}
	wantLine := "FAILED: unlock: PCR 7 mismatch: expected aa, actual bb (Secure Boot is off)"
	if f.Line() != wantLine {
		t.Errorf("Line() = %q, want %q", f.Line(), wantLine)
	}
}

func TestPCRMismatchString(t *testing.T) {
	tests := []struct {
		m    PCRMismatch
		want string
	}{
		{PCRMismatch{PCR: 7, Expected: "aa", Actual: "bb"}, "PCR 7 mismatch: expected aa, actual bb"},
		{PCRMismatch{PCR: 11, Signed: true, Actual: "cc", Why: "another UKI"}, "PCR 11 (signed policy) mismatch: actual cc (another UKI)"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
	inner := errors.New("tpm says no")
	if e := (&PCRMismatchError{Err: inner}); e.Error() != "tpm says no" || !errors.Is(e, inner) {
		t.Errorf("PCRMismatchError without PCRs = %v", e)
	}
}

func TestWaitAndReboot(t *testing.T) {
	b := New(Options{})
	b.Config = &bootconfig.Config{FailureTimeoutSec: 1}
	start := time.Now()
	if act := WaitAndReboot.HandleFailure(context.Background(), b, &Failure{}); act != Reboot {
		t.Errorf("WaitAndReboot = %v, want reboot", act)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("WaitAndReboot returned after %v, want the 1s failure timeout", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Config.FailureTimeoutSec = -1
	if act := WaitAndReboot.HandleFailure(ctx, b, &Failure{}); act != Reboot {
		t.Errorf("WaitAndReboot(never, canceled) = %v, want reboot", act)
	}
}

func TestRunRetry(t *testing.T) {
	b := New(Options{})
	broken := 2
	b.flow.Steps = []Step{{"x", func(context.Context) error {
		if broken > 0 {
			broken--
			return errors.New("not yet")
		}
		return nil
	}}}
	var seen []string
	b.opts.OnFailure = FailureHandlerFunc(func(ctx context.Context, b *Boot, f *Failure) Action {
		seen = append(seen, f.Line())
		return Retry
	})
	if act, err := b.Run(context.Background()); act != Reboot || err != nil {
		t.Errorf("Run() = %v, %v, want reboot after success", act, err)
	}
	if len(seen) != 2 || seen[0] != "FAILED: x: not yet" {
		t.Errorf("failure handler saw %q", seen)
	}
	b.flow.Steps = append(b.flow.Steps, Step{"y", func(context.Context) error { return errors.New("fatal") }})
	b.opts.OnFailure = FailureHandlerFunc(func(ctx context.Context, b *Boot, f *Failure) Action { return PowerOff })
	if act, err := b.Run(context.Background()); act != PowerOff || err == nil || err.Error() != "y: fatal" {
		t.Errorf("Run() = %v, %v, want power off with the failure", act, err)
	}
}
