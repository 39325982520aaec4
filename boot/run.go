package boot

import (
	"context"
)

// Run runs the boot: in boot mode, when every step succeeds, the root's
// init replaces this process and Run never returns. It returns when
// install mode finished (Reboot) or when the failure handler decided
// (Reboot or PowerOff, with the failure's error); the caller then does
// what the Action says. A Retry from the handler resumes at the failed
// step.
func (b *Boot) Run(ctx context.Context) (Action, error) {
	for {
		err := b.flow.Run(ctx)
		if err == nil {
			return Reboot, nil
		}
		f := b.failure(err)
		b.Log.Errorf("%s", f.Line())
		if b.Trial {
			// The old slot holds the last good build: no waiting, no
			// control plane. The watchdog stays armed in case the
			// reboot hangs.
			b.failTrial(f)
			closeWatchdog(b.watchdog, true)
			return Reboot, err
		}
		h := b.opts.OnFailure
		if h == nil {
			h = WaitAndReboot
		}
		act := h.HandleFailure(ctx, b, f)
		if act != Retry {
			closeWatchdog(b.watchdog, false)
			return act, err
		}
		b.Log.Printf("retrying from step %s", b.flow.Next())
	}
}

// Failure returns the failure state of a boot that stopped at err (for
// status queries of the control plane).
func (b *Boot) Failure(err error) *Failure { return b.failure(err) }
