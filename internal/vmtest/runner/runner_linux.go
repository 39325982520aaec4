package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"initos/internal/vmtest/plan"
	"initos/kmod"
)

// mounts are the filesystems the guest tests may rely on.
var mounts = []struct{ fstype, target string }{
	{"proc", "/proc"},
	{"sysfs", "/sys"},
	{"devtmpfs", "/dev"},
	{"tmpfs", "/tmp"},
	{"tmpfs", "/run"},
}

func run() (int, error) {
	if err := mountAll(); err != nil {
		return -1, err
	}
	fmt.Printf("%s uptime=%s\n", plan.StartMarker, uptime())
	p, err := readPlan()
	if err != nil {
		return -1, err
	}
	for _, m := range p.Modules {
		if err := kmod.Load(m.Path, m.Params); err != nil && !m.Optional {
			return -1, err
		}
	}
	if err := waitDevices(p.Devices, 30*time.Second); err != nil {
		return -1, err
	}
	return runTests(p)
}

func mountAll() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

func uptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "?"
	}
	up, _, _ := strings.Cut(string(b), " ")
	return up
}

func readPlan() (*plan.Plan, error) {
	b, err := os.ReadFile(plan.Path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var p plan.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("parse plan %s: %w", plan.Path, err)
	}
	return &p, nil
}

func waitDevices(devs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, d := range devs {
		for {
			if _, err := os.Stat(d); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wait for device %s: not there after %v", d, timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// runTests runs the test binary with its stdout and stderr on the data
// channel, and returns its exit status.
func runTests(p *plan.Plan) (int, error) {
	out, err := openOutput(p.Output)
	if err != nil {
		return -1, err
	}
	defer out.Close()
	cmd := exec.Command(p.Binary, p.Args...)
	cmd.Dir, cmd.Env = p.Dir, p.Env
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	drain(out)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	case err != nil:
		return -1, fmt.Errorf("run %s: %w", p.Binary, err)
	}
	return 0, nil
}

// openOutput opens the data channel: a serial port set to raw mode, so
// that bytes pass through unchanged.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return f, nil // not a tty: nothing to set
	}
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("set raw mode on %s: %w", path, err)
	}
	return f, nil
}

// drain waits until a serial port has sent everything written to it.
func drain(f *os.File) {
	unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
}

// finish prints the exit marker and ends the VM; PID 1 must never exit.
// It restarts rather than powers off: qemu runs with -no-reboot, so a
// restart ends it too, and it works without ACPI (keyboard controller,
// triple fault), where a power off degrades to a halt that never ends.
func finish(status int) {
	fmt.Printf("%s%d\n", plan.ExitMarker, status)
	drain(os.Stdout)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest runner: restart:", err)
	}
	select {}
}
