package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"initos/boot"
	"initos/install/usbmode"
)

// installer is install mode (initos.mode=install, the USB installer):
// boot.Options.Install runs the stick's unattended install with package
// usbmode and remembers what the initrd does next.
type installer struct {
	console io.Writer
	done    bool // the installer ran to an outcome
	outcome usbmode.Outcome
}

// run is boot.Options.Install: the recovery image's root hash from the
// signed command line, the modules the installer needs, the install in
// the recovery root (with systemd-stub's /.extra, so that it binds the
// volumes under this UKI's signed PCR policy), then "leave-initrd". A
// stick without an install config gives a shell instead.
func (in *installer) run(ctx context.Context, b *boot.Boot) error {
	hash, _ := b.Cmdline.Get(usbmode.RootHashParam)
	if hash == "" {
		return fmt.Errorf("the signed kernel command line has no %s=ROOTHASH (the recovery image's verity root hash)", usbmode.RootHashParam)
	}
	if b.ESP == nil {
		return errors.New("the installer's ESP was not found")
	}
	if err := b.LoadModules(usbmode.Modules...); err != nil {
		return fmt.Errorf("the installer's modules: %w", err)
	}
	env := usbmode.Env{Disk: b.ESP.Disk, ESP: b.ESPDir(), RootHash: hash, Extra: b.ExtraDir(), Console: in.console}
	out, err := usbmode.Run(ctx, env)
	if err != nil {
		return err
	}
	if out == usbmode.NoConfig {
		return in.shell(ctx, b, env)
	}
	in.done, in.outcome = true, out
	b.Log.Printf("install: %s", map[usbmode.Outcome]string{usbmode.PowerOff: "installed: powering off, remove the stick",
		usbmode.Reboot: "Secure Boot keys enrolled: rebooting into the installer"}[out])
	return b.LeaveInitrd()
}

// action is what init does after the install step: power off when it
// installed, else reboot.
func (in *installer) action() boot.Action {
	if in.done && in.outcome == usbmode.PowerOff {
		return boot.PowerOff
	}
	return boot.Reboot
}

// shell hands the console a root shell in the recovery root when the
// stick has no install config (the seed allows a shell in the installer
// only), after "leave-initrd": nothing run there can unseal a disk key.
// When it exits, init reboots.
func (in *installer) shell(ctx context.Context, b *boot.Boot, env usbmode.Env) error {
	b.Log.Printf("install: no install config on the stick (%s on %s): a root shell in the recovery root; exit it to reboot",
		usbmode.ConfigPath[len(usbmode.USBDir):], b.ESP.Device)
	if err := b.LeaveInitrd(); err != nil {
		return err
	}
	status, err := usbmode.Shell(ctx, env)
	if err != nil {
		return err
	}
	in.done, in.outcome = true, usbmode.NoConfig
	b.Log.Printf("install: the shell exited with status %d", status)
	return nil
}
