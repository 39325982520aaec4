package boot

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// wdiocGetTimeout is WDIOC_GETTIMEOUT, _IOR('W', 7, int) in the generic
// ioctl encoding of amd64 and arm64 (x/sys/unix lacks it).
const wdiocGetTimeout = 2<<30 | 4<<16 | 'W'<<8 | 7

// watchdog keeps a hardware watchdog fed while the initrd runs, so that a
// hang (a disk that never answers) reboots the machine.
type watchdog struct {
	f    *os.File
	stop chan struct{}
	once sync.Once
}

// startWatchdog arms the configured watchdog, if any. A failure to arm it
// is logged, not fatal: the boot itself does not need it.
func (b *Boot) startWatchdog() {
	if b.Config.Watchdog.Device != "" {
		b.armWatchdog(b.Config.Watchdog.Device, "")
	}
}

// armWatchdog opens dev (which starts it), sets the config's timeout (else
// keeps the driver's) and feeds it until the handover; prefix starts the
// log lines.
func (b *Boot) armWatchdog(dev, prefix string) {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Log.Printf("%swatchdog: %v (not armed)", prefix, err)
		return
	}
	timeout := 60
	if sec := b.Config.Watchdog.TimeoutSec; sec > 0 {
		if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, sec); err != nil {
			b.Log.Printf("%swatchdog: set timeout %ds: %v", prefix, sec, err)
		}
		timeout = sec
	} else if t, err := unix.IoctlGetInt(int(f.Fd()), wdiocGetTimeout); err == nil && t > 0 {
		timeout = t
	}
	w := &watchdog{f: f, stop: make(chan struct{})}
	go w.feed(time.Duration(timeout) * time.Second / 3)
	b.watchdog = w
	b.Log.Printf("%swatchdog: %s armed, timeout %ds", prefix, dev, timeout)
}

func (w *watchdog) feed(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		unix.IoctlWatchdogKeepalive(int(w.f.Fd()))
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// close stops feeding; keep leaves the watchdog armed for the next init
// (which must open it within the timeout), else it is disarmed with the
// magic close character.
func (w *watchdog) close(keep bool) {
	if w == nil {
		return
	}
	w.once.Do(func() {
		close(w.stop)
		unix.IoctlWatchdogKeepalive(int(w.f.Fd()))
		if !keep {
			w.f.Write([]byte("V"))
		}
		w.f.Close()
	})
}
