package update

import (
	"context"
	"errors"
	"maps"
	"os"
	"strings"
	"testing"

	"initos/efivar"
	"initos/tpm2"
	"initos/update/trial"

	"initos/internal/updatetest"
)

// stageFrom stages a directory source on h.
func stageFrom(t *testing.T, h *fakeHost, dir string, o StageOptions) (*StageResult, error) {
	t.Helper()
	src, err := OpenSource(context.Background(), dir, RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return Stage(context.Background(), h.System, src, o)
}

// TestStage: the inactive slot gets the UKI (twice) and the modules image,
// verified; the trial is recorded; BootNext points at it; BootOrder and
// the active slot are untouched. A rerun writes nothing.
func TestStage(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", true)
	old, next := newBuild(t, db, 1, "v1"), newBuild(t, db, 2, "v2")
	h.install(t, "a", old)
	h.install(t, "b", old)
	before := tree(t, h.esp["a"])
	res, err := stageFrom(t, h, next.Dir(t), StageOptions{})
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if res.Slot != "b" || res.From != "a" || res.BootNext != "Boot0001" || !res.RollbackChecked {
		t.Errorf("Stage = slot %s from %s, BootNext %s, rollback checked %v; want b from a, Boot0001, true", res.Slot, res.From, res.BootNext, res.RollbackChecked)
	}
	if want := int64(2*len(next.UKI) + len(next.Modules)); res.BytesWritten != want {
		t.Errorf("BytesWritten = %d, want %d", res.BytesWritten, want)
	}
	if after := tree(t, h.esp["a"]); !maps.Equal(before, after) {
		t.Errorf("the active slot's ESP changed: %v -> %v", before, after)
	}
	for _, p := range []string{UKIPath, FallbackPath} {
		if b, _ := os.ReadFile(joinESP(h.esp["b"], p)); string(b) != string(next.UKI) {
			t.Errorf("slot b %s is not the new UKI", p)
		}
	}
	if n, ok, _ := efivar.BootNext(h.vars); !ok || n != 1 {
		t.Errorf("BootNext = %d, %v, want 1", n, ok)
	}
	if o, _ := efivar.BootOrder(h.vars); len(o) != 2 || o[0] != 0 {
		t.Errorf("BootOrder = %v, want [0 1] (unchanged)", o)
	}
	r, _ := trial.Read(h.vars)
	if r == nil || r.Slot != "b" || r.From != "a" || r.State != trial.Staged || r.SecurityVersion != 2 || r.BuildID != "v2" {
		t.Errorf("trial record = %+v, want b staged from a, version 2, build v2", r)
	}
	res, err = stageFrom(t, h, next.Dir(t), StageOptions{})
	if err != nil || res.BytesWritten != 0 {
		t.Errorf("Stage again = %d bytes written, %v; want 0 (everything already there)", res.BytesWritten, err)
	}
}

// TestStageRefused: each refusal leaves slot b, BootNext and the record
// as they were, and names what is wrong.
func TestStageRefused(t *testing.T) {
	db, other := loadSigner(t, "db"), loadSigner(t, "other")
	good := newBuild(t, db, 5, "good")
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, h *fakeHost) string // returns the source
		want  error
		msg   string
	}{
		{"other key", func(t *testing.T, h *fakeHost) string { return newBuild(t, other, 5, "x").Dir(t) }, ErrSignature, "signer is not trusted"},
		{"unsigned", func(t *testing.T, h *fakeHost) string {
			b := newBuild(t, updatetest.Signer{}, 5, "x")
			return b.Dir(t)
		}, ErrSignature, "not accepted by the firmware's db"},
		{"below the TPM minimum", func(t *testing.T, h *fakeHost) string {
			if _, _, err := tpm2.RaiseMinVersion(h.tpm, 0, 6, nil); err != nil {
				t.Fatal(err)
			}
			return good.Dir(t)
		}, ErrRollback, "security version 5, below the minimum 6"},
		{"modules image tampered", func(t *testing.T, h *fakeHost) string {
			d := good.Dir(t)
			p := d + "/modules-" + testKernel + ".sqfs"
			b, _ := os.ReadFile(p)
			b[5000] ^= 1
			os.WriteFile(p, b, 0o644)
			return d
		}, ErrModules, "does not match the root hash"},
		{"modules image missing", func(t *testing.T, h *fakeHost) string {
			d := good.Dir(t)
			os.Remove(d + "/modules-" + testKernel + ".sqfs")
			return d
		}, ErrSource, "is not in"},
		{"install-mode UKI", func(t *testing.T, h *fakeHost) string {
			d := t.TempDir()
			os.WriteFile(d+"/initos.efi", makeUKI(t, db, Config{Mode: "install"}), 0o644)
			return d
		}, ErrConfig, `mode "install"`},
		{"no initrd config", func(t *testing.T, h *fakeHost) string {
			d := t.TempDir()
			os.WriteFile(d+"/initos.efi", makeUKI(t, db, nil), 0o644)
			return d
		}, ErrConfig, "the initrd has no /etc/initos/initrd.json"},
		{"not a PE image", func(t *testing.T, h *fakeHost) string {
			d := t.TempDir()
			os.WriteFile(d+"/initos.efi", []byte("MZ but not really"), 0o644)
			return d
		}, nil, "UKI: parse PE: malformed PE image"},
		{"on trial", func(t *testing.T, h *fakeHost) string {
			trial.Write(h.vars, &trial.Record{Slot: "a", State: trial.Trying})
			return good.Dir(t)
		}, ErrOnTrial, "slot a is on trial"},
		{"no db", func(t *testing.T, h *fakeHost) string {
			h.vars.Delete("db", efivar.ImageSecurityDB)
			return good.Dir(t)
		}, ErrSignature, "holds no X.509 certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, db, "a", true)
			old := newBuild(t, db, 1, "old")
			h.install(t, "a", old)
			h.install(t, "b", old)
			src := c.setup(t, h)
			recBefore, _ := trial.Read(h.vars)
			before := tree(t, h.esp["a"])
			_, err := stageFrom(t, h, src, StageOptions{})
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Stage = %v, want %v containing %q", err, c.want, c.msg)
			}
			if _, ok, _ := efivar.BootNext(h.vars); ok {
				t.Errorf("BootNext set after a refused stage")
			}
			if r, _ := trial.Read(h.vars); (r == nil) != (recBefore == nil) || (r != nil && r.State != recBefore.State) {
				t.Errorf("trial record changed: %+v -> %+v", recBefore, r)
			}
			if !maps.Equal(before, tree(t, h.esp["a"])) {
				t.Errorf("the active slot's ESP changed")
			}
		})
	}
}

// TestStageInterrupted: a cancellation in the middle of writing the
// modules image (the power cut of the VM test, in-process) leaves no
// BootNext and no half file under the final name; a rerun completes.
func TestStageInterrupted(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", false)
	old, next := newBuild(t, db, 1, "v1"), newBuild(t, db, 1, "v2")
	h.install(t, "a", old)
	h.install(t, "b", old)
	ctx, cancel := context.WithCancel(context.Background())
	src, _ := OpenSource(ctx, next.Dir(t), RegistryOptions{})
	_, err := Stage(ctx, h.System, src, StageOptions{Progress: func(step string, done, total int64) {
		if strings.Contains(step, "modules") && done > 0 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stage(cancelled) = %v, want context.Canceled", err)
	}
	if _, ok, _ := efivar.BootNext(h.vars); ok {
		t.Errorf("BootNext set by an interrupted stage")
	}
	for p := range tree(t, h.esp["b"]) {
		if strings.Contains(p, ".tmp-") {
			t.Errorf("temporary file %s left behind", p)
		}
	}
	res, err := stageFrom(t, h, next.Dir(t), StageOptions{})
	if err != nil || res.BootNext == "" {
		t.Fatalf("Stage after the interruption = %+v, %v", res, err)
	}
}

// TestStageRestaged: a second upgrade after a --no-reboot one clears the
// BootNext and the staged record of the first before writing, so a power
// cut while it writes boots the old slot with no trial recorded (the VM
// case proves it through the firmware); once it completes, its own
// record and BootNext are set.
func TestStageRestaged(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", false)
	first, second := newBuild(t, db, 1, "v1"), newBuild(t, db, 1, "v2")
	if _, err := stageFrom(t, h, first.Dir(t), StageOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src, _ := OpenSource(ctx, second.Dir(t), RegistryOptions{})
	_, err := Stage(ctx, h.System, src, StageOptions{Progress: func(step string, done, total int64) {
		if strings.Contains(step, "initos.efi") && done > 0 {
			cancel() // the power cut, while the new UKI is written
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stage(cut while writing) = %v, want context.Canceled", err)
	}
	if _, ok, _ := efivar.BootNext(h.vars); ok {
		t.Errorf("BootNext still set after a cut restaging")
	}
	if r, err := trial.Read(h.vars); err != nil || r != nil {
		t.Errorf("trial record after a cut restaging = %+v, %v; want none", r, err)
	}
	res, err := stageFrom(t, h, second.Dir(t), StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := trial.Read(h.vars); res.BootNext == "" || r == nil || r.State != trial.Staged || r.BuildID != "v2" {
		t.Errorf("rerun: BootNext %q, record %+v; want BootNext set and build v2 staged", res.BootNext, r)
	}
}

// TestStageLeftovers: a power cut leaves temporary files and a stale
// modules image of another kernel; staging removes them.
func TestStageLeftovers(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "b", false)
	efivar.SetBootOrder(h.vars, []uint16{1, 0})
	next := newBuild(t, db, 1, "v2")
	writeTestFile(t, joinESP(h.esp["a"], "EFI/Linux/.initos.efi.tmp-123"), []byte("half"))
	writeTestFile(t, joinESP(h.esp["a"], "initos/modules-5.10.0-old.sqfs"), []byte("old"))
	if _, err := stageFrom(t, h, next.Dir(t), StageOptions{}); err != nil {
		t.Fatal(err)
	}
	got := keys(tree(t, h.esp["a"]))
	want := []string{"EFI/BOOT/BOOTX64.EFI", "EFI/Linux/initos.efi", "initos/modules-" + testKernel + ".sqfs"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("slot a's ESP = %v, want %v", got, want)
	}
}

// TestStageTwoDisks: every ESP of the slot gets the files; the second is
// copied from the first.
func TestStageTwoDisks(t *testing.T) {
	db := loadSigner(t, "db")
	h := newHost(t, db, "a", false)
	b2 := t.TempDir()
	h.ESPs = append(h.ESPs, ESP{Slot: "b", Disk: "/dev/vdb", Device: "/dev/vdb2", Number: 2, PartUUID: "6f3c2d1e-0000-4000-8000-0000000000bb", Start: 1026048, Size: 1024000})
	h.Mounter.(DirMounter)["6f3c2d1e-0000-4000-8000-0000000000bb"] = b2
	next := newBuild(t, db, 1, "v2")
	res, err := stageFrom(t, h, next.Dir(t), StageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ESPs) != 2 || !maps.Equal(tree(t, h.esp["b"]), tree(t, b2)) {
		t.Errorf("Stage on two disks: %d ESPs, second ESP %v, want 2 and the same files as the first", len(res.ESPs), tree(t, b2))
	}
}
