package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"initos/internal/progress"
	"initos/update"
)

func init() {
	register("upgrade", "stage a signed UKI and its modules image into the inactive A/B slot and try it", runUpgrade)
	describe("upgrade", "[--from FILE|DIR|REF] [--root-image REF] [--no-reboot] [--json]",
		"On an InitOS host: write the signed UKI and the modules image of --from (a UKI file with its modules "+
			"image beside it, a directory, an OCI image layout, or a registry reference, pulled pinned to its "+
			"digest) into the ESPs of the slot that did not boot, through temporary files, fsync and rename, and "+
			"verify them read back from the disk: the UKI's Authenticode signature against the firmware's db, "+
			"the modules image against the root hash in the UKI's signed config, its security version against "+
			"the TPM's anti-rollback minimum. The booted slot is never written. Then record the trial in the "+
			"InitOSTrial EFI variable, set BootNext to the slot's boot entry (BootOrder keeps the old slot) and "+
			"reboot into it, unless --no-reboot. The trial boot must be blessed (`initos bless`); a trial that "+
			"panics, hangs (watchdog), fails in the initrd or fails its health gate comes back to the old slot. "+
			"--root-image also pulls a root image into a new subvolume for the new slot only. Exit status 3: the "+
			"artifacts were refused (signature, version, modules image); 4: this boot is an unblessed trial; "+
			"130: interrupted (nothing half-written is ever booted).")
}

// discoverSystem finds the host's slots (a variable for tests).
var discoverSystem = func() (*update.System, error) { return update.Discover(update.Paths{}) }

// rebootHost reboots into BootNext (a variable for tests).
var rebootHost = reboot

// Exit statuses of the A/B verbs.
const (
	exitRefused = 3   // artifacts refused, health gate failed, rollback target unbootable
	exitOnTrial = 4   // upgrade refused during an unblessed trial
	exitSignal  = 130 // interrupted by SIGINT/SIGTERM
)

func runUpgrade(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("upgrade", stdout, stderr)
	from := fs.String("from", "", "the artifacts: a UKI `FILE` (its modules image beside it), a DIR, oci:DIR, or a registry REF")
	rootImage := fs.String("root-image", "", "a root image `REF` to install for the new slot (default: the one published with the artifacts)")
	noReboot := fs.Bool("no-reboot", false, "stage and set BootNext, but do not reboot")
	insecure := fs.Bool("insecure-registry", false, "reach the registry over plain HTTP")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	showProgress := fs.Bool("progress", true, "draw a progress bar on a terminal")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *from == "" {
		return usageError(fs, "--from is required")
	}
	sys, err := discoverSystem()
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	sys.Log = logWriter(stderr, *asJSON)
	src, err := update.OpenSource(ctx, *from, update.RegistryOptions{Insecure: *insecure})
	if err != nil {
		return upgradeError(ctx, err)
	}
	defer src.Close()
	bars := &progress.Stages{W: stderr, Enabled: *showProgress, Bytes: true}
	res, err := update.Stage(ctx, sys, src, update.StageOptions{RootImage: *rootImage, Roots: rootInstaller(sys), Progress: bars.Update})
	bars.Finish()
	if err != nil {
		return upgradeError(ctx, err)
	}
	if err := printStage(stdout, res, *asJSON); err != nil {
		return err
	}
	if *noReboot {
		return nil
	}
	return rebootHost(stderr)
}

// upgradeError maps the flow's errors to exit statuses.
func upgradeError(ctx context.Context, err error) error {
	err = fmt.Errorf("upgrade: %w", err)
	switch {
	case ctx.Err() != nil:
		return &exitError{exitSignal, err}
	case errors.Is(err, update.ErrOnTrial):
		return &exitError{exitOnTrial, err}
	case refused(err):
		return &exitError{exitRefused, err}
	}
	return err
}

// refused reports an error that rejects the artifacts themselves.
func refused(err error) bool {
	for _, e := range []error{update.ErrSignature, update.ErrRollback, update.ErrModules, update.ErrConfig, update.ErrArtifact} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func printStage(w io.Writer, r *update.StageResult, asJSON bool) error {
	if asJSON {
		return writeJSON(w, r)
	}
	fmt.Fprintf(w, "staged slot %s from %s: kernel %s, security version %d, build %q\n", r.Slot, r.Source, r.UKI.Kernel, r.UKI.Version, r.UKI.BuildID)
	fmt.Fprintf(w, "  %d bytes written on %d ESP(s), verified from the disk in %.1fs\n", r.BytesWritten, len(r.ESPs), r.Seconds)
	if r.Root != "" {
		fmt.Fprintf(w, "  root for slot %s: %s\n", r.Slot, r.Root)
	}
	fmt.Fprintf(w, "  BootNext = %s: the next boot tries slot %s once; slot %s stays the default until `initos bless`\n", r.BootNext, r.Slot, r.From)
	return nil
}

// logWriter is where the flows' progress lines go: stderr, and nowhere
// with --json (stdout then carries one document only; stderr keeps errors).
func logWriter(stderr io.Writer, asJSON bool) io.Writer {
	if asJSON {
		return io.Discard
	}
	return stderr
}

// reboot reboots the host: through systemd when it runs (a clean
// shutdown), else sync and reboot(2).
func reboot(w io.Writer) error {
	fmt.Fprintln(w, "rebooting")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.Command("systemctl", "reboot").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl reboot: %w: %s", err, out)
		}
		return nil
	}
	unix.Sync()
	time.Sleep(100 * time.Millisecond) // let the output reach the console or the SSH client
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// rootInstaller installs root images for a slot on this host (see
// update.HostRoots); nil where there is none.
var rootInstaller = func(*update.System) update.RootInstaller { return nil }
