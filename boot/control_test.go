package boot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/control"
)

// TestControlBackend: the control plane's status of a failed unlock, a
// wrong key, the right key (the volume is then unlocked for the retried
// step, with no binding check), and the verbs without what they need.
func TestControlBackend(t *testing.T) {
	b, ft := unlockBoot(t, uuid1)
	ft.unlock[uuid1] = &PCRMismatchError{PCRs: []PCRMismatch{{PCR: 7, Expected: "aa", Actual: "bb"}}, Err: errors.New("policy")}
	b.Config.SecurityVersion, b.Config.BuildID = 7, "b7"
	b.Slot, b.Release = "a", "6.1.0-test"
	err := b.unlock(context.Background())
	if err == nil {
		t.Fatal("unlock succeeded")
	}
	c := &controlBackend{b: b, f: b.failure(&StepError{StepUnlock, err})}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "" && st.Mode != "boot" || st.Slot != "A" || st.Version != 7 || st.BuildID != "b7" || st.Kernel != "6.1.0-test" {
		t.Errorf("status = %+v", st)
	}
	if st.Failure == nil || st.Failure.Step != "unlock" || !strings.Contains(st.Failure.Message, "PCR 7 mismatch: expected aa, actual bb") ||
		len(st.Failure.PCRs) != 1 || st.Failure.PCRs[0] != (control.PCRMismatch{Bank: "sha256", Index: 7, Expected: "aa", Actual: "bb"}) {
		t.Errorf("status failure = %+v", st.Failure)
	}
	if len(st.Volumes) != 1 || st.Volumes[0].State != "locked" || st.Volumes[0].UUID != uuid1 || !strings.Contains(st.Volumes[0].Reason, "PCR 7") {
		t.Errorf("status volumes = %+v", st.Volumes)
	}
	if err := c.Unlock(context.Background(), []byte("wrong")); !errors.Is(err, control.ErrWrongKey) {
		t.Errorf("Unlock(wrong) = %v, want ErrWrongKey", err)
	}
	if err := c.Unlock(context.Background(), []byte("pass")); err != nil {
		t.Fatalf("Unlock(right) = %v", err)
	}
	if err := c.Unlock(context.Background(), []byte("pass")); err == nil || !strings.Contains(err.Error(), "no locked volume") {
		t.Errorf("Unlock again = %v", err)
	}
	ft.calls = nil
	if err := b.unlock(context.Background()); err != nil {
		t.Fatalf("retried unlock = %v", err)
	}
	if got := strings.Join(ft.calls, ","); got != "measure "+uuid1+" into 15" {
		t.Errorf("retried unlock TPM calls = %q, want only the measurement (no unseal, no binding)", got)
	}
	if _, err := c.Reseal(context.Background()); !errors.Is(err, ErrNoTPM) {
		t.Errorf("Reseal with a fake TPM = %v, want ErrNoTPM (no transport)", err)
	}
	if err := c.Install(context.Background(), nil, nil); !errors.Is(err, ErrNoInstaller) {
		t.Errorf("Install = %v", err)
	}
	rep, err := c.PCRs(context.Background())
	if err != nil || len(rep.PCRs) != 16 || rep.Bank != "sha256" {
		t.Errorf("PCRs = %+v, %v", rep, err)
	}
}

// TestServeControlWithoutKeys: no SSH key in the config: wait and reboot.
func TestServeControlWithoutKeys(t *testing.T) {
	b := New(Options{})
	b.Config = &bootconfig.Config{Version: 1, Mode: "boot", FailureTimeoutSec: 1}
	start := time.Now()
	if act := ServeControl.HandleFailure(context.Background(), b, &Failure{}); act != Reboot || time.Since(start) < time.Second {
		t.Errorf("ServeControl without keys = %v after %v, want reboot after the timeout", act, time.Since(start))
	}
}

// TestWatchdogMissingDevice: a configured watchdog that is not there is
// logged, not fatal.
func TestWatchdogMissingDevice(t *testing.T) {
	var console strings.Builder
	b := New(Options{Console: &console})
	b.Config = &bootconfig.Config{Version: 1, Mode: "boot", Watchdog: bootconfig.Watchdog{Device: "/dev/nonexistent-watchdog"}}
	b.startWatchdog()
	if b.watchdog != nil || !strings.Contains(console.String(), "watchdog: open /dev/nonexistent-watchdog") {
		t.Errorf("watchdog %v, console %q", b.watchdog, console.String())
	}
	closeWatchdog(b.watchdog, false) // a nil watchdog closes quietly
}
