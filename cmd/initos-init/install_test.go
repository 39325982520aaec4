package main

import (
	"context"
	"strings"
	"testing"

	"initos/boot"
	"initos/install/usbmode"
)

// TestInstallerRefuses: install mode names what is missing before it
// touches anything: the recovery root hash on the signed command line,
// the ESP it booted from.
func TestInstallerRefuses(t *testing.T) {
	tests := []struct {
		cmdline string
		want    string
	}{
		{"console=ttyS0 initos.mode=install", "no initos.recovery=ROOTHASH"},
		{"initos.mode=install initos.recovery=", "no initos.recovery=ROOTHASH"},
		{"initos.mode=install initos.recovery=ab12", "the installer's ESP was not found"},
	}
	for _, tt := range tests {
		b := boot.New(boot.Options{})
		b.Cmdline = boot.ParseCmdline(tt.cmdline)
		in := &installer{}
		err := in.run(context.Background(), b)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("installer.run(%q) = %v, want %q", tt.cmdline, err, tt.want)
		}
		if got := in.action(); got != boot.Reboot {
			t.Errorf("installer.action() after a refusal = %v, want %v", got, boot.Reboot)
		}
	}
}

// TestInstallerAction: the installer's outcome becomes init's last act.
func TestInstallerAction(t *testing.T) {
	for out, want := range map[usbmode.Outcome]boot.Action{usbmode.PowerOff: boot.PowerOff, usbmode.Reboot: boot.Reboot} {
		in := &installer{done: true, outcome: out}
		if got := in.action(); got != want {
			t.Errorf("installer{outcome: %v}.action() = %v, want %v", out, got, want)
		}
	}
}
