package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"initos/internal/vmtest"
)

// vmState is the demo's one virtual machine.
type vmState struct {
	m     *vmtest.Machine
	boots int
	cur   *running // the last boot, stopped when the demo ends
}

// running is a boot in progress.
type running struct {
	c      *console
	cancel context.CancelFunc
	done   chan struct{}
	res    *vmtest.Result
	err    error
}

// startRegistry serves go-containerregistry's registry on 127.0.0.1
// (the owner's registry; the guest reaches it as 10.0.2.100:5000).
func startRegistry() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	go http.Serve(l, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	return l.Addr().(*net.TCPAddr).Port, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// newMachine makes the machine: OVMF (Secure Boot build) with an empty
// variable store (setup mode), a swtpm, an i6300esb watchdog, the USB
// stick and a blank 4 GiB disk, and a NIC whose port 22 is the host's
// sshPort and which reaches the registry.
func (d *demo) newMachine() error {
	target := d.p("target.img")
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	if err := f.Truncate(4 << 30); err != nil {
		return err
	}
	f.Close()
	self, err := os.Executable() // proxies each guest connection to the registry (proxy)
	if err != nil {
		return err
	}
	fw := &vmtest.Firmware{Code: vmtest.OVMFSecureBoot().Code, Vars: vmtest.OVMF().Vars, SecureBoot: true}
	m, err := vmtest.NewMachine(d.p("machine"), vmtest.MachineConfig{
		MemoryMB: 2048, Firmware: fw, TPM: true, Reboots: true, Watchdog: true,
		Disks: []vmtest.Disk{{Path: d.p("usb.img")}, {Path: target, Serial: "target"}},
		Net: &vmtest.Net{Forward: []vmtest.Forward{{Host: d.sshPort, Guest: 22}},
			GuestForward: []vmtest.GuestForward{{Guest: 5000, Cmd: fmt.Sprintf("%s --connect 127.0.0.1:%d", self, d.regPort)}}},
	})
	if err != nil {
		return err
	}
	d.vm = &vmState{m: m}
	return nil
}

// boot starts a boot of the machine; its console lines are shown.
func (d *demo) boot(ctx context.Context, limit time.Duration) *running {
	d.vm.boots++
	if d.vm.cur != nil {
		d.vm.cur.stop()
	}
	ctx, cancel := context.WithTimeout(ctx, vmtest.ScaleTimeout(limit))
	logf, _ := os.Create(d.p(fmt.Sprintf("console-%d.log", d.vm.boots)))
	r := &running{c: &console{out: d.n.out, log: logf}, cancel: cancel, done: make(chan struct{})}
	d.vm.cur = r
	go func() {
		defer close(r.done)
		defer logf.Close()
		r.res, r.err = d.vm.m.Boot(ctx, vmtest.BootSpec{Console: r.c})
	}()
	return r
}

// wait waits for one of the triggers, or the end of the boot.
func (r *running) wait(ctx context.Context, hit <-chan struct{}) error {
	select {
	case <-hit:
		return nil
	case <-r.done:
		select {
		case <-hit: // the line came with the last output
			return nil
		default:
		}
		if r.err != nil {
			return fmt.Errorf("the VM stopped: %w (console: %s)", r.err, consoleLog(r))
		}
		return fmt.Errorf("the VM stopped (console: %s)", consoleLog(r))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop ends the boot (qemu is killed) and waits for it.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

// finish waits for the guest to power off.
func (r *running) finish() error {
	<-r.done
	r.cancel()
	if r.err != nil && !errors.Is(r.err, context.Canceled) {
		return fmt.Errorf("%w (console: %s)", r.err, consoleLog(r))
	}
	return r.err
}

func consoleLog(r *running) string {
	if r.res == nil {
		return "none"
	}
	return filepath.Join(r.res.Dir, "console.log")
}
