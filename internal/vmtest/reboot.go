package vmtest

// Additions for multi-boot scenarios that go through the firmware on
// every boot (A/B upgrades): the guest may reboot inside one qemu run,
// and a hardware watchdog may reset it.

// i6300esbArgs adds the Intel 6300ESB watchdog (driver i6300esb, Debian
// builds it as a module) and makes its expiry reset the machine.
var i6300esbArgs = []string{"-device", "i6300esb", "-action", "watchdog=reset"}

// rebootArgs applies MachineConfig.Reboots and Watchdog to qemu's
// arguments: without -no-reboot a guest reboot (or a watchdog reset) goes
// back to the firmware within the same qemu process, which ends when the
// guest powers off (or the context ends).
func (m *Machine) rebootArgs(args []string) []string {
	if m.cfg.Reboots {
		out := args[:0:0]
		for _, a := range args {
			if a != "-no-reboot" {
				out = append(out, a)
			}
		}
		args = out
	}
	if m.cfg.Watchdog {
		args = append(args, i6300esbArgs...)
	}
	return args
}

// GuestForward makes a host TCP service reachable from the guest: a
// connection to 10.0.2.2:Guest... is forwarded by qemu to 127.0.0.1:Host
// on the host (slirp guestfwd), the one way out of a restricted network.
type GuestForward struct {
	Guest int // port on GuestForwardIP
	Host  int // port on the host's 127.0.0.1
	// Cmd, when set, replaces Host: qemu runs this command for each
	// connection, its stdin and stdout being the connection. A Host
	// forward is qemu's tcp chardev, which connects once per qemu run
	// and so serves one guest connection; an HTTP client (a registry
	// pull) needs Cmd.
	Cmd string
}

// GuestForwardIP is the guest-side address of guest forwards.
const GuestForwardIP = "10.0.2.100"
