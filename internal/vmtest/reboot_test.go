package vmtest

import (
	"strings"
	"testing"
)

func TestRebootArgs(t *testing.T) {
	base := []string{"-m", "1024", "-no-reboot", "-nic", "none"}
	for _, c := range []struct {
		cfg  MachineConfig
		want string
	}{
		{MachineConfig{}, "-m 1024 -no-reboot -nic none"},
		{MachineConfig{Reboots: true}, "-m 1024 -nic none"},
		{MachineConfig{Watchdog: true}, "-m 1024 -no-reboot -nic none -device i6300esb -action watchdog=reset"},
		{MachineConfig{Reboots: true, Watchdog: true}, "-m 1024 -nic none -device i6300esb -action watchdog=reset"},
	} {
		m := &Machine{cfg: c.cfg}
		if got := strings.Join(m.rebootArgs(append([]string(nil), base...)), " "); got != c.want {
			t.Errorf("rebootArgs(%+v) = %q, want %q", c.cfg, got, c.want)
		}
	}
	got := strings.Join(netArgs(&Net{GuestForward: []GuestForward{{Guest: 5000, Host: 41234}}}), " ")
	if !strings.Contains(got, "guestfwd=tcp:10.0.2.100:5000-tcp:127.0.0.1:41234") {
		t.Errorf("netArgs(GuestForward) = %q", got)
	}
	got = strings.Join(netArgs(&Net{GuestForward: []GuestForward{{Guest: 5000, Cmd: "/bin/proxy --to 127.0.0.1:41234,x"}}}), " ")
	if want := "guestfwd=tcp:10.0.2.100:5000-cmd:/bin/proxy --to 127.0.0.1:41234,,x"; !strings.Contains(got, want) {
		t.Errorf("netArgs(GuestForward with Cmd) = %q, want it to contain %q", got, want)
	}
}
