package boot

import (
	"time"

	"initos/update/trial"
)

// The hardware watchdog (trial.Watchdog) is kept fed while the initrd
// runs, so that a hang (a disk that never answers) reboots the machine.

// startWatchdog arms the configured watchdog, if any. A failure to arm it
// is logged, not fatal: the boot itself does not need it.
func (b *Boot) startWatchdog() {
	if b.Config.Watchdog.Device != "" {
		b.armWatchdog(b.Config.Watchdog.Device, "")
	}
}

// armWatchdog opens dev (which starts it), sets the config's timeout (else,
// or when the driver refuses it, keeps the driver's) and feeds it until
// the handover; prefix starts the log lines.
func (b *Boot) armWatchdog(dev, prefix string) {
	timeout := time.Duration(b.Config.Watchdog.TimeoutSec) * time.Second
	w, err := trial.ArmWatchdog(dev, timeout)
	if err != nil && timeout > 0 {
		b.Log.Printf("%s%v", prefix, err)
		w, err = trial.ArmWatchdog(dev, 0)
	}
	if err != nil {
		b.Log.Printf("%s%v (not armed)", prefix, err)
		return
	}
	b.watchdog = w
	b.Log.Printf("%swatchdog: %s armed, timeout %ds", prefix, dev, int(w.Timeout/time.Second))
}

// closeWatchdog stops feeding w (nil: none); keep leaves it armed for the
// next init (which must open it within the timeout), else it is disarmed
// with the magic close character.
func closeWatchdog(w *trial.Watchdog, keep bool) {
	if keep {
		w.Handover()
	} else {
		w.Disarm()
	}
}
