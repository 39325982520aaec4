//go:build !linux

package trial

import (
	"errors"
	"time"
)

// DefaultWatchdog is the first watchdog device.
const DefaultWatchdog = "/dev/watchdog0"

// Watchdog is an open hardware watchdog (Linux only).
type Watchdog struct {
	Device  string
	Timeout time.Duration
}

var errNotLinux = errors.New("watchdog: Linux only")

// ArmWatchdog is Linux only.
func ArmWatchdog(dev string, timeout time.Duration) (*Watchdog, error) { return nil, errNotLinux }

// Handover is Linux only.
func (w *Watchdog) Handover() error { return nil }

// Disarm is Linux only.
func (w *Watchdog) Disarm() error { return nil }

// WatchdogReset is Linux only.
func WatchdogReset(sys, dev string) bool { return false }

// SetPanicReboot is Linux only.
func SetPanicReboot(proc string, seconds int) error { return errNotLinux }
