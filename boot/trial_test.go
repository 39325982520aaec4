package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/bootconfig"
	"initos/efivar"
	"initos/update/trial"
)

// trialBoot is a boot of slot with a trial record rec (nil: none) in a
// directory standing in for efivarfs, and /proc/sys/kernel/panic = 0.
func trialBoot(t *testing.T, slot string, rec *trial.Record) (*Boot, efivar.Store, *strings.Builder) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"proc/sys/kernel/panic": "0\n"})
	vars := &efivar.Dir{Path: filepath.Join(dir, "efivars")}
	os.MkdirAll(vars.Path, 0o755)
	if rec != nil {
		if err := trial.Write(vars, rec); err != nil {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	b := New(Options{Console: &log, Paths: Paths{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Dev: filepath.Join(dir, "dev")}})
	b.Config = bootconfig.New()
	b.Config.SecurityVersion, b.Config.BuildID = 3, "new"
	b.Config.Watchdog.Device = filepath.Join(dir, "dev/watchdog0") // missing: armed after coldplug
	b.Settings.Mode = bootconfig.ModeBoot
	b.Slot, b.vars = slot, vars
	return b, vars, &log
}

func TestBeginTrial(t *testing.T) {
	staged := func(slot string, state trial.State) *trial.Record {
		return &trial.Record{Format: trial.Format, Slot: slot, From: trial.Other(slot), State: state, SecurityVersion: 3, BuildID: "new", StagedAt: 1}
	}
	tests := []struct {
		name      string
		slot      string
		rec       *trial.Record
		wantTrial bool
		wantState trial.State // "" : no record
		wantStep  string
		wantPanic string
	}{
		{"no record", "a", nil, false, "", "", "0"},
		{"staged for this slot", "b", staged("b", trial.Staged), true, trial.Trying, "", "10"},
		{"trying, bless cut short", "b", staged("b", trial.Trying), true, trial.Trying, "", "10"},
		{"other slot never started", "a", staged("b", trial.Staged), false, trial.Failed, "firmware or kernel", "0"},
		{"blessed", "b", staged("b", trial.Blessed), false, trial.Blessed, "", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, vars, _ := trialBoot(t, tt.slot, tt.rec)
			if err := b.beginTrial(context.Background()); err != nil {
				t.Fatalf("beginTrial() = %v", err)
			}
			if b.Trial != tt.wantTrial {
				t.Errorf("beginTrial(): Trial = %v, want %v", b.Trial, tt.wantTrial)
			}
			r, err := trial.Read(vars)
			if err != nil {
				t.Fatal(err)
			}
			if got := stateOf(r); got != tt.wantState || (r != nil && r.Step != tt.wantStep) {
				t.Errorf("record after beginTrial() = %+v, want state %q step %q", r, tt.wantState, tt.wantStep)
			}
			p, _ := os.ReadFile(filepath.Join(b.paths.Proc, "sys/kernel/panic"))
			if got := strings.TrimSpace(string(p)); got != tt.wantPanic {
				t.Errorf("kernel.panic = %s, want %s", got, tt.wantPanic)
			}
			if tt.wantTrial && b.pendingWatchdog != b.Config.Watchdog.Device {
				t.Errorf("pending watchdog = %q, want %q (its driver not loaded yet)", b.pendingWatchdog, b.Config.Watchdog.Device)
			}
		})
	}
}

func stateOf(r *trial.Record) trial.State {
	if r == nil {
		return ""
	}
	return r.State
}

// TestRunTrialFailure: a failing step of a trial boot records
// "initrd: STEP" with the error and reboots at once, without the failure
// handler (the old slot holds the last good build).
func TestRunTrialFailure(t *testing.T) {
	rec := &trial.Record{Format: trial.Format, Slot: "b", From: "a", State: trial.Staged, SecurityVersion: 3, StagedAt: 1}
	b, vars, log := trialBoot(t, "b", rec)
	b.flow.Steps = []Step{{StepTrial, b.beginTrial}, {StepRoot, func(context.Context) error { return errors.New("init /sbin/init missing") }}}
	b.opts.OnFailure = FailureHandlerFunc(func(ctx context.Context, b *Boot, f *Failure) Action {
		t.Errorf("failure handler called on a trial boot")
		return PowerOff
	})
	act, err := b.Run(context.Background())
	if act != Reboot || err == nil {
		t.Errorf("Run() = %v, %v, want reboot with the error", act, err)
	}
	r, err := trial.Read(vars)
	if err != nil || r == nil {
		t.Fatalf("trial.Read() = %v, %v", r, err)
	}
	if r.State != trial.Failed || r.Step != "initrd: root" || r.Reason != "init /sbin/init missing" || r.EndedAt == 0 {
		t.Errorf("record = %+v, want failed at initrd: root with the error", r)
	}
	if !strings.Contains(log.String(), "trial: the trial of slot b failed at root: recorded; rebooting now (the firmware falls back to slot a)") {
		t.Errorf("log lacks the trial failure:\n%s", log)
	}
}

// rollbackTPM is a fake TPM with an anti-rollback minimum.
type rollbackTPM struct {
	*fakeTPM
	min uint64
}

func (r *rollbackTPM) CheckRollback(v uint64) (uint64, error) {
	if v < r.min {
		return r.min, &trial.RollbackError{Version: v, Min: r.min, Index: 0x01157647}
	}
	return r.min, nil
}

func TestCheckRollback(t *testing.T) {
	tests := []struct {
		min     uint64
		wantErr string
	}{
		{0, ""},
		{3, ""},
		{4, "anti-rollback: this UKI has security version 3, below the minimum 4 recorded in TPM NV index 0x01157647"},
	}
	for _, tt := range tests {
		b, _, _ := trialBoot(t, "a", nil)
		b.tpm = &rollbackTPM{newFakeTPM(), tt.min}
		err := b.checkRollback(context.Background())
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.wantErr)) {
			t.Errorf("checkRollback(version 3, minimum %d) = %v, want %q", tt.min, err, tt.wantErr)
		}
		if err != nil && !trial.IsRollback(err) {
			t.Errorf("checkRollback(): %v is not a rollback error", err)
		}
	}
	b, _, _ := trialBoot(t, "a", nil)
	if err := b.checkRollback(context.Background()); err != nil {
		t.Errorf("checkRollback(no TPM) = %v, want nil (unlock names the missing TPM)", err)
	}
	b.tpm = newFakeTPM()
	if err := b.checkRollback(context.Background()); err != nil {
		t.Errorf("checkRollback(TPM without the check) = %v, want nil", err)
	}
}

// TestBeginTrialAfterColdplug: the other slot's unblessed trial is
// recorded once coldplug loaded the watchdog driver, whose bootstatus
// says whether it reset the machine.
func TestBeginTrialAfterColdplug(t *testing.T) {
	rec := &trial.Record{Format: trial.Format, Slot: "a", From: "b", State: trial.Trying, StagedAt: 1, BootedAt: 2}
	b, vars, _ := trialBoot(t, "b", rec)
	if err := b.beginTrial(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r, _ := trial.Read(vars); r.State != trial.Trying || !b.pendingBegin {
		t.Fatalf("before coldplug: record %q, pending %v; want trying, pending", r.State, b.pendingBegin)
	}
	writeFiles(t, b.paths.Sys, map[string]string{"class/watchdog/watchdog0/bootstatus": "32\n"}) // WDIOF_CARDRESET
	b.afterColdplug()
	r, _ := trial.Read(vars)
	if r.State != trial.Failed || r.Step != "after the initrd" || !strings.Contains(r.Reason, "hardware watchdog reset the machine") || b.Trial {
		t.Errorf("after coldplug: record %+v (trial %v), want failed after the initrd by the watchdog", r, b.Trial)
	}
}
