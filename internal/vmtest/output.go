package vmtest

import (
	"errors"
	"strings"
	"testing"
)

// Output boots the VM once and runs the guest tests matching run, like
// VM.Run, but returns what they printed (their log lines and output, the
// test2json framing removed) instead of replaying them as subtests: for
// benchmarks (testing.B), whose guest side prints its measurements. It
// fails tb when a guest test fails or skips, or the guest does not end
// cleanly.
func (vm *VM) Output(tb testing.TB, run string) string {
	tb.Helper()
	res, bootErr, _ := vm.boot(tb, run, nil, false)
	evs, decodeErr := decodeEvents(res.Output)
	r := buildResults(evs)
	var out strings.Builder
	var walk func(gs []*guestTest)
	walk = func(gs []*guestTest) {
		for _, g := range gs {
			out.WriteString(testOutput(g.output.String()))
			if g.action != "pass" {
				tb.Errorf("vmtest: guest test %s did not pass (%q)", g.name, g.action)
			}
			walk(g.children)
		}
	}
	walk(r.top)
	status, exited := exitStatus(res.Console)
	switch {
	case bootErr != nil && !(exited && errors.Is(bootErr, errNoEnd)):
		tb.Errorf("vmtest: %v", bootErr)
	case !exited:
		tb.Errorf("vmtest: the guest runner printed no exit status")
	case decodeErr != nil:
		tb.Errorf("vmtest: %v", decodeErr)
	case status != 0 && !tb.Failed():
		tb.Errorf("vmtest: guest test binary exited with status %d:\n%s", status, r.pkg.String())
	case len(r.top) == 0:
		tb.Errorf("vmtest: no guest test ran: -test.run matched nothing")
	}
	if tb.Failed() {
		vm.logFailure(tb, res)
		tb.Logf("vmtest: guest output:\n%s", out.String())
	}
	return out.String()
}
