package vmtest

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"initos/internal/vmtest/plan"
)

// errPowerCut ends a RunCut boot when the guest asks for the power cut.
var errPowerCut = errors.New("power cut")

// RunCut boots the VM once like Run, for a guest test that cuts the power
// (PowerCut) at a point of its choosing: qemu is killed as soon as the
// console shows the request, so whatever the guest had not written to its
// disks is lost, as in a power failure. Guest tests that ended before the
// cut are reported as usual; the one that cut is not. It fails t when the
// guest ends without cutting.
func (vm *VM) RunCut(t *testing.T, run string) {
	t.Helper()
	vm.runBoot(t, run, nil, true)
}

// PowerCut, in a guest test of a RunCut boot, asks the host to cut the
// power now and never returns. Nothing is synced first.
func PowerCut() {
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		fmt.Fprintf(f, "\n%s\n", plan.PowerCutMarker)
		f.Close()
	}
	select {}
}

// reportCut replays the guest tests that ended before the power cut.
func (vm *VM) reportCut(t *testing.T, res *Result, bootErr error, cw *consoleWatch) {
	t.Helper()
	if !cw.started.IsZero() {
		t.Logf("vmtest: power cut after %v (qemu start to runner start %v)", res.Elapsed.Round(time.Millisecond), cw.started.Sub(res.Start).Round(time.Millisecond))
	}
	evs, _ := decodeEvents(res.Output)
	for _, g := range buildResults(evs).top {
		if g.action != "" {
			g.replay(t)
		}
	}
	switch {
	case !cw.cut && bootErr != nil:
		t.Errorf("vmtest: no power cut: %v", bootErr)
	case !cw.cut:
		t.Errorf("vmtest: the guest ended without asking for the power cut (%q)", plan.PowerCutMarker)
	case !errors.Is(bootErr, errPowerCut):
		t.Errorf("vmtest: power cut: %v", bootErr)
	}
	if t.Failed() {
		vm.logFailure(t, res)
	}
}
