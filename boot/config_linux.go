package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"initos/bootconfig"
)

// readConfig is the "config" step: the kernel command line, the running
// kernel's release, and the signed initrd config; it then appends the
// steps of the mode (boot or install).
func (b *Boot) readConfig(ctx context.Context) error {
	raw, err := os.ReadFile(filepath.Join(b.paths.Proc, "cmdline"))
	if err != nil {
		return fmt.Errorf("read the kernel command line: %w", err)
	}
	b.Cmdline = ParseCmdline(string(raw))
	if b.Release, err = kernelRelease(); err != nil {
		return err
	}
	c, err := bootconfig.ReadFile(b.paths.Config)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("initrd config %s missing: this initrd was not built by `initos initrd build`", b.paths.Config)
	case err != nil:
		return err
	}
	if c.Kernel != "" && c.Kernel != b.Release {
		return fmt.Errorf("initrd config: built for kernel %s, running %s", c.Kernel, b.Release)
	}
	if b.Settings, err = settings(c, b.Cmdline); err != nil {
		return err
	}
	b.Config = c
	b.Log.Printf("config: mode %s, security version %d, build %q, kernel %s", b.Settings.Mode, c.SecurityVersion, c.BuildID, b.Release)
	b.startWatchdog()
	b.flow.Steps = append(b.flow.Steps, b.modeSteps()...)
	return nil
}

// kernelRelease returns `uname -r`.
func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
