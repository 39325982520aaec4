package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatal instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestMissing(t *testing.T) {
	for _, tt := range []struct {
		ci         string
		skip, fail bool
	}{{"", true, false}, {"false", true, false}, {"true", false, true}} {
		t.Setenv("CI", tt.ci)
		r := &recorder{TB: t}
		Missing(r, "no %s", "frob")
		if (r.skipped != "") != tt.skip || (r.failed != "") != tt.fail {
			t.Errorf("CI=%q: Missing skipped %q, failed %q; want skip %t, fail %t", tt.ci, r.skipped, r.failed, tt.skip, tt.fail)
		}
		if got := r.skipped + r.failed; len(got) < 7 || got[:7] != "no frob" {
			t.Errorf("CI=%q: Missing message %q, want it to start with %q", tt.ci, got, "no frob")
		}
	}
}

func TestTool(t *testing.T) {
	t.Setenv("CI", "true")
	if p := Tool(t, "sh"); p == "" {
		t.Errorf(`Tool("sh") = "", want a path`)
	}
	r := &recorder{TB: t}
	Tool(r, "initos-no-such-tool")
	if r.failed == "" {
		t.Errorf("Tool(missing) under CI did not fail (skipped %q)", r.skipped)
	}
}

func TestRun(t *testing.T) {
	if got := string(Run(t, "sh", "-c", "echo out; echo err >&2")); got != "out\n" {
		t.Errorf(`Run(sh -c "echo out") = %q, want "out\n"`, got)
	}
}
