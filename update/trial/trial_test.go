package trial

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"initos/efivar"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func store(t *testing.T, r *Record) efivar.Store {
	t.Helper()
	s := &efivar.Dir{Path: t.TempDir()}
	if r != nil {
		if err := Write(s, r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func staged(slot string) *Record {
	return &Record{Slot: slot, From: Other(slot), State: Staged, SecurityVersion: 2, BuildID: "v2", Kernel: "6.1", StagedAt: t0.Unix() - 60}
}

// TestBegin: the initrd's view of the record, case by case.
func TestBegin(t *testing.T) {
	trying := staged("b")
	trying.State, trying.BootedAt = Trying, t0.Unix()-30
	blessed := staged("b")
	blessed.State = Blessed
	for _, c := range []struct {
		name      string
		rec       *Record
		boot      Boot
		trial     bool
		state     State
		step      string
		reason    string
		ended     bool
		unchanged bool
	}{
		{name: "no record", boot: Boot{Slot: "a"}, unchanged: true},
		{name: "staged, its slot boots", rec: staged("b"), boot: Boot{Slot: "b", BuildID: "v2"}, trial: true, state: Trying},
		{name: "staged, other build", rec: staged("b"), boot: Boot{Slot: "b", BuildID: "v9"}, trial: true, state: Trying, reason: `booted build "v9", staged build "v2"`},
		{name: "trying, its slot again", rec: trying, boot: Boot{Slot: "b"}, trial: true, state: Trying, unchanged: true},
		{name: "staged, old slot boots", rec: staged("b"), boot: Boot{Slot: "a"}, state: Failed, ended: true,
			step: "firmware or kernel", reason: "its initrd never started the trial"},
		{name: "trying, old slot boots", rec: trying, boot: Boot{Slot: "a"}, state: Failed, ended: true,
			step: "after the initrd", reason: "never blessed"},
		{name: "trying, watchdog reset", rec: trying, boot: Boot{Slot: "a", WatchdogReset: true}, state: Failed, ended: true,
			step: "after the initrd", reason: "hardware watchdog reset the machine"},
		{name: "blessed", rec: blessed, boot: Boot{Slot: "b"}, state: Blessed, unchanged: true},
		{name: "no slot", rec: staged("b"), boot: Boot{}, state: Staged, unchanged: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := store(t, c.rec)
			var before []byte
			if c.rec != nil {
				_, before, _ = s.Get(VarName, VendorGUID)
			}
			c.boot.Now = t0
			out, err := Begin(s, c.boot)
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if out.Trial != c.trial || (out.Ended != nil) != c.ended {
				t.Errorf("Begin = trial %v, ended %v, want %v, %v", out.Trial, out.Ended != nil, c.trial, c.ended)
			}
			r, _ := Read(s)
			if c.rec == nil {
				if r != nil {
					t.Errorf("Begin wrote %+v, want no record", r)
				}
				return
			}
			if r.State != c.state || r.Step != c.step || !strings.Contains(r.Reason, c.reason) {
				t.Errorf("record = %s/%q/%q, want %s/%q/...%q...", r.State, r.Step, r.Reason, c.state, c.step, c.reason)
			}
			_, after, _ := s.Get(VarName, VendorGUID)
			if c.unchanged && string(after) != string(before) {
				t.Errorf("Begin rewrote the record on an ordinary boot:\n%s\n%s", before, after)
			}
			if c.state == Trying && !c.unchanged && r.BootedAt != t0.Unix() {
				t.Errorf("BootedAt = %d, want %d", r.BootedAt, t0.Unix())
			}
		})
	}
}

func TestFail(t *testing.T) {
	rec := staged("b")
	rec.State = Trying
	s := store(t, rec)
	if err := Fail(s, Boot{Slot: "a", Now: t0}, "unlock", errors.New("x")); err != nil {
		t.Fatal(err)
	}
	if r, _ := Read(s); r.State != Trying {
		t.Errorf("Fail from the other slot changed the record to %s", r.State)
	}
	if err := Fail(s, Boot{Slot: "b", Now: t0}, "unlock", errors.New("volume 3f2a: PCR 7 mismatch")); err != nil {
		t.Fatal(err)
	}
	want := *rec
	want.Format, want.State, want.EndedAt, want.Step, want.Reason = Format, Failed, t0.Unix(), "initrd: unlock", "volume 3f2a: PCR 7 mismatch"
	if r, _ := Read(s); !cmp.Equal(*r, want) {
		t.Errorf("record after Fail: diff (-want +got)\n%s", cmp.Diff(want, *r))
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"format":2,"slot":"a","state":"staged"}`, "format 2"},
		{`{"format":1,"slot":"c","state":"staged"}`, `slot "c"`},
		{`{"format":1,"slot":"a","from":"a","state":"staged"}`, `from slot "a"`},
		{`{"format":1,"slot":"a","state":"done"}`, `state "done"`},
		{`{"format":1,"slot":"a","state":"staged","build_id":"` + strings.Repeat("x", 300) + `"}`, "at most 256"},
		{`{"format":1,`, "trial record"},
		{strings.Repeat(" ", MaxSize+1), "at most 2048"},
	} {
		if _, err := Parse([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q) = %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

func TestMarshalTruncatesReason(t *testing.T) {
	r := staged("a")
	r.Reason = strings.Repeat("é", 1000)
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil || len(got.Reason) > maxReason || !strings.HasSuffix(got.Reason, "...") {
		t.Errorf("round trip of a long reason = %d bytes, %v", len(got.Reason), err)
	}
}

func TestCheckRollback(t *testing.T) {
	tpm, err := tpm2.Open(mustDevice(t, swtpmtest.Start(t).Device()))
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	st, err := CheckRollback(tpm, 0, 1, false)
	if err != nil || st.Defined {
		t.Fatalf("CheckRollback(no index, define=false) = %+v, %v, want not defined, nil", st, err)
	}
	if st, err = CheckRollback(tpm, 0, 1, true); err != nil || !st.Defined || st.Min != 0 {
		t.Fatalf("CheckRollback(define) = %+v, %v, want defined, 0", st, err)
	}
	if _, _, err := tpm2.RaiseMinVersion(tpm, 0, 4, nil); err != nil {
		t.Fatal(err)
	}
	_, err = CheckRollback(tpm, 0, 3, true)
	var re *RollbackError
	if !errors.As(err, &re) || re.Min != 4 || re.Version != 3 || !IsRollback(err) || !strings.Contains(err.Error(), "security version 3, below the minimum 4") {
		t.Errorf("CheckRollback(3, min 4) = %v, want a RollbackError naming 3 and 4", err)
	}
	if _, err := CheckRollback(tpm, 0, 4, true); err != nil {
		t.Errorf("CheckRollback(4, min 4) = %v, want nil", err)
	}
}

func mustDevice(t *testing.T, s string) tpm2.Device {
	d, err := tpm2.ParseDevice(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSetPanicReboot(t *testing.T) {
	proc := t.TempDir()
	p := filepath.Join(proc, "sys/kernel/panic")
	os.MkdirAll(filepath.Dir(p), 0o755)
	for _, c := range []struct{ before, after string }{{"0\n", "10\n"}, {"5\n", "5\n"}, {"-1\n", "-1\n"}} {
		os.WriteFile(p, []byte(c.before), 0o644)
		if err := SetPanicReboot(proc, 10); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != c.after {
			t.Errorf("SetPanicReboot with kernel.panic %q = %q, want %q", c.before, b, c.after)
		}
	}
}

func TestWatchdogReset(t *testing.T) {
	sys := t.TempDir()
	dir := filepath.Join(sys, "class/watchdog/watchdog0")
	os.MkdirAll(dir, 0o755)
	for _, c := range []struct {
		status string
		want   bool
	}{{"32\n", true}, {"0\n", false}, {"0x20", true}, {"junk", false}} {
		os.WriteFile(filepath.Join(dir, "bootstatus"), []byte(c.status), 0o644)
		if got := WatchdogReset(sys, ""); got != c.want {
			t.Errorf("WatchdogReset(bootstatus %q) = %v, want %v", c.status, got, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, r := range []*Record{staged("a"), {Slot: "b", State: Failed, Step: "initrd: unlock", Reason: "x"}} {
		b, _ := r.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed record: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("Parse(Marshal(r)): %v", err)
		}
	})
}
