package trial

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// wdiocGetTimeout is WDIOC_GETTIMEOUT, _IOR('W', 7, int), in the generic
// ioctl encoding of amd64 and arm64 (x/sys/unix lacks it).
const wdiocGetTimeout = 2<<30 | 4<<16 | 'W'<<8 | 7

// wdiofCardReset is WDIOF_CARDRESET (linux/watchdog.h): the last reboot
// was caused by the watchdog.
const wdiofCardReset = 0x0020

// DefaultWatchdog is the first watchdog device.
const DefaultWatchdog = "/dev/watchdog0"

// Watchdog is an open hardware watchdog being fed.
type Watchdog struct {
	Device  string
	Timeout time.Duration // as the driver set it

	f    *os.File
	stop chan struct{}
	done chan struct{}
	once sync.Once
	err  error
}

// ArmWatchdog opens dev (which starts the watchdog), sets its timeout
// (0: keep the driver's), and feeds it every third of the timeout until
// Handover or Disarm. Opening fails with EBUSY when another process (a
// root's systemd with RuntimeWatchdogSec) holds it.
func ArmWatchdog(dev string, timeout time.Duration) (*Watchdog, error) {
	if dev == "" {
		dev = DefaultWatchdog
	}
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	fd := int(f.Fd())
	if timeout > 0 {
		if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, int(timeout.Round(time.Second)/time.Second)); err != nil {
			f.Write([]byte("V"))
			f.Close()
			return nil, fmt.Errorf("watchdog %s: set timeout %v: %w", dev, timeout, err)
		}
	}
	w := &Watchdog{Device: dev, Timeout: 60 * time.Second, f: f, stop: make(chan struct{}), done: make(chan struct{})}
	if t, err := unix.IoctlGetInt(fd, wdiocGetTimeout); err == nil && t > 0 {
		w.Timeout = time.Duration(t) * time.Second
	}
	go w.feed(max(w.Timeout/3, time.Second))
	return w, nil
}

func (w *Watchdog) feed(every time.Duration) {
	defer close(w.done)
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

// Handover stops feeding after one last keepalive and closes the device
// without the magic character: the watchdog stays armed, and whoever runs
// next (the root's init, `initos bless`) must open it and feed or disarm
// it within the timeout, or the machine resets.
func (w *Watchdog) Handover() error { return w.finish(false) }

// Disarm stops the watchdog (the magic close: "V" then close).
func (w *Watchdog) Disarm() error { return w.finish(true) }

func (w *Watchdog) finish(disarm bool) error {
	if w == nil {
		return nil
	}
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		unix.IoctlWatchdogKeepalive(int(w.f.Fd()))
		if disarm {
			if _, err := w.f.Write([]byte("V")); err != nil {
				w.err = fmt.Errorf("watchdog %s: magic close: %w", w.Device, err)
			}
		}
		if err := w.f.Close(); err != nil && w.err == nil {
			w.err = fmt.Errorf("watchdog %s: %w", w.Device, err)
		}
	})
	return w.err
}

// WatchdogReset reports whether the watchdog dev (its sysfs bootstatus)
// says it caused the last reboot. It does not open the device (that would
// start it). Drivers that do not tell report false.
func WatchdogReset(sys, dev string) bool {
	if dev == "" {
		dev = DefaultWatchdog
	}
	b, err := os.ReadFile(filepath.Join(sys, "class/watchdog", filepath.Base(dev), "bootstatus"))
	if err != nil {
		return false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 0, 32)
	return err == nil && v&wdiofCardReset != 0
}

// SetPanicReboot makes a kernel panic reboot after seconds, unless the
// command line (panic=N) already set a timeout: a trial kernel that panics
// must come back to the firmware, which then boots the old slot. proc is
// where procfs is mounted.
func SetPanicReboot(proc string, seconds int) error {
	p := filepath.Join(proc, "sys/kernel/panic")
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("kernel.panic: %w", err)
	}
	if strings.TrimSpace(string(b)) != "0" {
		return nil
	}
	if err := os.WriteFile(p, []byte(strconv.Itoa(seconds)+"\n"), 0); err != nil {
		return fmt.Errorf("kernel.panic: %w", err)
	}
	return nil
}
