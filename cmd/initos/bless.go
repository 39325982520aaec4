package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"initos/update"
)

func init() {
	register("bless", "end the trial boot of an upgraded slot: health gate, then make it the default", runBless)
	describe("bless", "[--health-cmd CMD] [--deadline 2m] [--no-reboot] [--json]",
		"Run on every boot by the host's init (e.g. a systemd unit ordered after the root's own checks). On a "+
			"trial boot (`initos upgrade` staged this slot and the initrd started its trial): take over the "+
			"hardware watchdog the initrd left armed and feed it, run --health-cmd (through /bin/sh -c when it has shell syntax, else directly) within "+
			"--deadline, and when it succeeds put this slot first in BootOrder, raise the TPM's anti-rollback "+
			"minimum to its security version, record the trial as blessed and disarm the watchdog. When the gate "+
			"fails or times out, record the trial as failed with the command's output and reboot (unless "+
			"--no-reboot; the watchdog stays armed): the firmware then boots the old slot, which stays first in "+
			"BootOrder. On an ordinary boot it only disarms the watchdog. Exit status 3: the health gate failed.")
}

func runBless(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bless", stdout, stderr)
	cmd := fs.String("health-cmd", "", "the health gate: a shell `CMD` that exits 0 when the new root is healthy (default: none, pass)")
	deadline := fs.Duration("deadline", update.DefaultDeadline, "the `time` the health gate may take")
	watchdog := fs.String("watchdog", "", "the watchdog `DEVICE` the initrd armed (default /dev/watchdog0; - for none)")
	noReboot := fs.Bool("no-reboot", false, "do not reboot when the health gate fails")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *deadline <= 0 {
		return usageError(fs, "--deadline %v: want a positive duration", *deadline)
	}
	sys, err := discoverSystem()
	if err != nil {
		return fmt.Errorf("bless: %w", err)
	}
	sys.Log = logWriter(stderr, *asJSON)
	o := update.BlessOptions{Deadline: *deadline, Watchdog: *watchdog}
	if *cmd != "" {
		o.Health = healthCommand(*cmd)
	}
	res, err := update.Bless(ctx, sys, o)
	if res != nil {
		if perr := printBless(stdout, res, *asJSON); perr != nil {
			return perr
		}
	}
	switch {
	case errors.Is(err, update.ErrHealth):
		if !*noReboot {
			defer rebootHost(stderr)
		}
		return &exitError{exitRefused, fmt.Errorf("bless: %w", err)}
	case err != nil && ctx.Err() != nil:
		return &exitError{exitSignal, fmt.Errorf("bless: %w", err)}
	case err != nil:
		return fmt.Errorf("bless: %w", err)
	}
	return nil
}

// shellChars make a health command need a shell.
const shellChars = "|&;<>()$`\\\"'*?[]#~=%{}\n\t"

// healthCommand runs cmd: through /bin/sh -c when it has shell syntax,
// else directly as its space-separated words (a root without a shell
// can still have a gate). A failure carries the tail of its output (what
// the trial record keeps).
func healthCommand(cmd string) func(ctx context.Context) error {
	argv := []string{"/bin/sh", "-c", cmd}
	if !strings.ContainsAny(cmd, shellChars) {
		argv = strings.Fields(cmd)
	}
	return func(ctx context.Context) error {
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		c.WaitDelay = 2 * time.Second
		err := c.Run()
		if err == nil {
			return nil
		}
		tail := strings.TrimSpace(out.String())
		if len(tail) > 400 {
			tail = "..." + tail[len(tail)-400:]
		}
		if tail != "" {
			return fmt.Errorf("%q: %w: %s", cmd, err, tail)
		}
		return fmt.Errorf("%q: %w", cmd, err)
	}
}

func printBless(w io.Writer, r *update.BlessResult, asJSON bool) error {
	if asJSON {
		return writeJSON(w, r)
	}
	switch {
	case !r.Trial:
		fmt.Fprintf(w, "slot %s: not on trial, nothing to bless; watchdog %s\n", r.Slot, r.Watchdog)
	case r.Blessed:
		fmt.Fprintf(w, "slot %s blessed: first in BootOrder, anti-rollback minimum %d -> %d; watchdog %s\n", r.Slot, r.MinBefore, r.MinAfter, r.Watchdog)
	default:
		fmt.Fprintf(w, "slot %s failed its trial: %s; watchdog %s\n", r.Slot, r.Reason, r.Watchdog)
	}
	return nil
}
