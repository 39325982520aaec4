package usbmode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// ShellPath is the recovery root's shell.
const ShellPath = "/bin/sh"

// Shell mounts the recovery root (as Run does) and runs its shell there
// as a login shell on the console: input from env.Stdin (default
// os.Stdin), output to env.Console. It returns the shell's exit status
// when it exits; the error says why there was no shell. On a terminal
// the shell gets it as its controlling terminal (job control, ^C).
func Shell(ctx context.Context, env Env) (int, error) {
	if env.Dir == "" {
		env.Dir = DefaultDir
	}
	if err := Mount(env); err != nil {
		return 0, err
	}
	if _, err := os.Stat(env.Dir + ShellPath); err != nil {
		return 0, fmt.Errorf("recovery root: no shell: %w", err)
	}
	cmd := chrootCommand(ctx, env, ShellPath, "-l")
	cmd.Stdin = env.Stdin
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if f, ok := cmd.Stdin.(*os.File); ok && isTerminal(f) {
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty = true, true // Ctty 0: the child's stdin
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("recovery shell %s: %w", ShellPath, err)
	}
	return 0, nil
}

// chrootCommand is name with args, run chrooted in the recovery root at
// env.Dir (mounted), its output on the console.
func chrootCommand(ctx context.Context, env Env, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &unix.SysProcAttr{Chroot: env.Dir}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux"}
	var out io.Writer = os.Stdout
	if env.Console != nil {
		out = env.Console
	}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
