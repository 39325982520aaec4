package update

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"initos/efivar"
	"initos/tpm2"
	"initos/update/trial"
)

// upgraded returns a host that staged build v2 (security version 2) into
// slot b from slot a, then booted slot b, whose initrd began the trial.
func upgraded(t *testing.T) (*fakeHost, *build) {
	t.Helper()
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", true)
	old, next := newBuild(t, db, 1, "v1"), newBuild(t, db, 2, "v2")
	h.install(t, "a", old)
	if _, err := stageFrom(t, h, next.Dir(t), StageOptions{}); err != nil {
		t.Fatal(err)
	}
	h.boot(t, "b")
	if out, err := trial.Begin(h.vars, trial.Boot{Slot: "b", SecurityVersion: 2, BuildID: "v2", Now: h.clock}); err != nil || !out.Trial {
		t.Fatalf("Begin = %+v, %v, want a trial", out, err)
	}
	return h, next
}

func TestBless(t *testing.T) {
	h, _ := upgraded(t)
	res, err := Bless(context.Background(), h.System, BlessOptions{Watchdog: "-", Health: func(context.Context) error { return nil }})
	if err != nil || !res.Trial || !res.Blessed || res.MinBefore != 0 || res.MinAfter != 2 {
		t.Fatalf("Bless = %+v, %v, want blessed, minimum 0 -> 2", res, err)
	}
	if o, _ := efivar.BootOrder(h.vars); len(o) != 2 || o[0] != 1 {
		t.Errorf("BootOrder = %v, want slot b's Boot0001 first", o)
	}
	if st, _ := tpm2.ReadMinVersion(h.tpm, 0); st.Min != 2 {
		t.Errorf("TPM minimum = %d, want 2", st.Min)
	}
	if r, _ := trial.Read(h.vars); r.State != trial.Blessed || r.EndedAt == 0 {
		t.Errorf("record = %+v, want blessed", r)
	}
	// A second bless (the next boot) has nothing to do.
	res, err = Bless(context.Background(), h.System, BlessOptions{Watchdog: "-"})
	if err != nil || res.Trial || res.Blessed {
		t.Errorf("Bless again = %+v, %v, want not a trial", res, err)
	}
}

func TestBlessHealthFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		health func(ctx context.Context) error
		msg    string
	}{
		{"exits 1", func(context.Context) error { return errors.New("/usr/local/bin/check: exit status 1") }, "exit status 1"},
		{"deadline", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, "no answer within the deadline of 50ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, _ := upgraded(t)
			res, err := Bless(context.Background(), h.System, BlessOptions{Watchdog: "-", Health: c.health, Deadline: 50 * time.Millisecond})
			if !errors.Is(err, ErrHealth) || !strings.Contains(err.Error(), c.msg) || res.Blessed {
				t.Fatalf("Bless = %+v, %v, want ErrHealth containing %q", res, err, c.msg)
			}
			if o, _ := efivar.BootOrder(h.vars); o[0] != 0 {
				t.Errorf("BootOrder = %v, want slot a first still", o)
			}
			if st, _ := tpm2.ReadMinVersion(h.tpm, 0); st.Min != 0 {
				t.Errorf("TPM minimum raised to %d by a failed trial", st.Min)
			}
			r, _ := trial.Read(h.vars)
			if r.State != trial.Failed || r.Step != "health gate" || !strings.Contains(r.Reason, c.msg) {
				t.Errorf("record = %+v, want failed at the health gate", r)
			}
			// The firmware boots slot a (BootOrder); its status names the trial.
			h.boot(t, "a")
			st, err := ReadStatus(h.System, StatusOptions{})
			if err != nil || st.Outcome != "failed" || st.Trial.Slot != "b" || st.Active != "a" || st.OnTrial {
				t.Errorf("status on slot a = %+v, %v, want the failed trial of b", st, err)
			}
		})
	}
}

// TestBlessCutShort: a power cut after BootOrder changed but before the
// record was written: the next boot (slot b again) is still a trial and
// bless finishes it.
func TestBlessCutShort(t *testing.T) {
	h, _ := upgraded(t)
	if err := h.setDefault("b"); err != nil {
		t.Fatal(err)
	}
	h.boot(t, "b")
	out, err := trial.Begin(h.vars, trial.Boot{Slot: "b"})
	if err != nil || !out.Trial {
		t.Fatalf("Begin after the cut = %+v, %v, want a trial", out, err)
	}
	if res, err := Bless(context.Background(), h.System, BlessOptions{Watchdog: "-"}); err != nil || !res.Blessed {
		t.Errorf("Bless after the cut = %+v, %v, want blessed", res, err)
	}
}

// TestTrialFailsOver: the trial boot never blesses; the firmware boots
// slot a, whose initrd ends the trial and whose status says why.
func TestTrialFailsOver(t *testing.T) {
	h, _ := upgraded(t)
	h.boot(t, "a")
	st, _ := ReadStatus(h.System, StatusOptions{})
	if st.Outcome != "failed (unrecorded)" {
		t.Errorf("status before the initrd recorded it: outcome %q, want failed (unrecorded)", st.Outcome)
	}
	out, err := trial.Begin(h.vars, trial.Boot{Slot: "a", WatchdogReset: true})
	if err != nil || out.Ended == nil {
		t.Fatalf("Begin on slot a = %+v, %v, want the trial of b ended", out, err)
	}
	st, _ = ReadStatus(h.System, StatusOptions{VerifyModules: true})
	if st.Outcome != "failed" || !strings.Contains(st.Trial.Reason, "watchdog") || st.Default != "a" {
		t.Errorf("status = outcome %q, reason %q, default %q; want failed, watchdog, a", st.Outcome, st.Trial.Reason, st.Default)
	}
	for _, s := range st.Slots {
		if !s.Bootable || s.Modules != "verified" {
			t.Errorf("slot %s: bootable %v, modules %q, problem %q", s.Slot, s.Bootable, s.Modules, s.Problem)
		}
	}
	// Upgrading again is allowed from slot a.
	if _, err := stageFrom(t, h, newBuild(t, loadSigner(t, "db"), 2, "v3").Dir(t), StageOptions{}); err != nil {
		t.Errorf("Stage after a failed trial: %v", err)
	}
}

func TestRollback(t *testing.T) {
	h, _ := upgraded(t)
	// On trial: roll back to a at once.
	res, err := Rollback(context.Background(), h.System, false)
	if err != nil || res.To != "a" || !res.EndedTrial {
		t.Fatalf("Rollback on trial = %+v, %v, want to a, trial ended", res, err)
	}
	if r, _ := trial.Read(h.vars); r.State != trial.Failed || r.Step != "rollback" {
		t.Errorf("record = %+v, want failed by rollback", r)
	}
	// Blessed b with version 2, then a (version 1) is retired by the TPM.
	h, _ = upgraded(t)
	if _, err := Bless(context.Background(), h.System, BlessOptions{Watchdog: "-"}); err != nil {
		t.Fatal(err)
	}
	_, err = Rollback(context.Background(), h.System, false)
	if err == nil || !strings.Contains(err.Error(), "security version 1 is below the TPM's anti-rollback minimum 2") {
		t.Errorf("Rollback to a retired slot = %v, want a refusal naming versions 1 and 2", err)
	}
	st, _ := ReadStatus(h.System, StatusOptions{})
	if st.Slots[0].Bootable || !st.Slots[1].Bootable {
		t.Errorf("status: slot a bootable %v, slot b %v; want false, true", st.Slots[0].Bootable, st.Slots[1].Bootable)
	}
}

func TestRollbackToFailedBuild(t *testing.T) {
	h, _ := upgraded(t)
	h.boot(t, "a")
	trial.Begin(h.vars, trial.Boot{Slot: "a"})
	_, err := Rollback(context.Background(), h.System, false)
	if err == nil || !strings.Contains(err.Error(), `slot b holds build "v2" of a failed upgrade`) {
		t.Errorf("Rollback to the failed build = %v, want a refusal", err)
	}
	if _, err := Rollback(context.Background(), h.System, true); err != nil {
		t.Errorf("Rollback --force = %v", err)
	}
}

func TestActiveSlot(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "b", false)
	if s, how, err := h.ActiveSlot(); s != "b" || !strings.Contains(how, "LoaderDevicePartUUID") || err != nil {
		t.Errorf("ActiveSlot = %s, %s, %v, want b from LoaderDevicePartUUID", s, how, err)
	}
	h.vars.Delete("LoaderDevicePartUUID", loaderVendor)
	if _, _, err := h.ActiveSlot(); err == nil || !strings.Contains(err.Error(), "cannot tell which slot booted") {
		t.Errorf("ActiveSlot without variables = %v", err)
	}
	h.vars.Set("BootCurrent", efivar.GlobalVariable, efivar.BootAttributes, []byte{1, 0})
	if s, how, err := h.ActiveSlot(); s != "b" || how != "BootCurrent Boot0001" || err != nil {
		t.Errorf("ActiveSlot from BootCurrent = %s, %s, %v", s, how, err)
	}
	h.vars.Set("LoaderDevicePartUUID", loaderVendor, 6, []byte("x\x00"))
	if _, _, err := h.ActiveSlot(); err == nil {
		t.Errorf("ActiveSlot with a malformed LoaderDevicePartUUID = nil error")
	}
}

// TestReadEntries: a slot's entry is the one labelled for it, else the
// first in BootOrder; entries of other partitions are ignored.
func TestReadEntries(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", false)
	// A second entry for slot a, unlabelled, first in BootOrder.
	o, _ := efivar.ReadBootEntry(h.vars, 0)
	o.Description = "UEFI OS"
	efivar.WriteBootEntry(h.vars, 5, o)
	efivar.SetBootOrder(h.vars, []uint16{5, 0, 1})
	e, err := h.ReadEntries()
	if err != nil || e.A.Num != 0 || e.B.Num != 1 || e.DefaultSlot() != "a" {
		t.Errorf("ReadEntries = A %v, B %v, default %s, %v; want 0, 1, a", e.A.Num, e.B.Num, e.DefaultSlot(), err)
	}
	efivar.RemoveBootEntry(h.vars, 1)
	if n, err := h.EnsureEntry("b"); err != nil || n != 1 {
		t.Errorf("ensureEntry(b) after removal = %d, %v, want a new Boot0001", n, err)
	}
	if e, _ := h.ReadEntries(); e.B == nil || e.B.Option.Description != "InitOS B" {
		t.Errorf("the recreated entry: %+v", e.B)
	}
}

// TestEnsureEntries: the installer's entries, A then B first in
// BootOrder, the others kept after them; a missing entry recreated.
func TestEnsureEntries(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", false)
	o, _ := efivar.ReadBootEntry(h.vars, 0)
	o.Description = "UEFI OS"
	efivar.WriteBootEntry(h.vars, 5, o)
	efivar.RemoveBootEntry(h.vars, 1)
	efivar.SetBootOrder(h.vars, []uint16{5, 0})
	if err := h.EnsureEntries(); err != nil {
		t.Fatalf("EnsureEntries: %v", err)
	}
	order, err := efivar.BootOrder(h.vars)
	if want := []uint16{0, 1, 5}; err != nil || !slices.Equal(order, want) {
		t.Errorf("BootOrder after EnsureEntries = %v, %v, want %v", order, err, want)
	}
	if e, _ := h.ReadEntries(); e.B == nil || e.B.Option.Description != "InitOS B" || e.DefaultSlot() != "a" {
		t.Errorf("entries after EnsureEntries: %+v", e)
	}
}
