package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"initos/update"
)

func init() {
	register("slot", "A/B slots: status, rollback", runSlot)
	describe("slot status", "[--verify] [--json]",
		"Print which slot booted and how that was found (LoaderDevicePartUUID or BootCurrent), which slot the "+
			"firmware boots by default (BootOrder) and next (BootNext), whether this boot is an unblessed trial, "+
			"the TPM's anti-rollback minimum, what each slot holds (kernel, security version, build id, signer, "+
			"modules image; --verify hashes the modules images against their root hashes) and whether it can boot "+
			"and unseal, and the last trial: its slot, build, times, outcome and, for a failed one, where and why "+
			"it failed. Nothing is written.")
	describe("slot rollback", "[--force] [--no-reboot] [--json]",
		"Make the other slot the default again (first in BootOrder) and reboot into it, after checking that it "+
			"can boot and unseal: its UKI accepted by the firmware's db, its modules image intact, its security "+
			"version not below the TPM's anti-rollback minimum (a slot retired by a blessed upgrade cannot get the "+
			"disk key and is refused). An unblessed trial of the booted slot is recorded as failed. A slot holding "+
			"a staged or failed upgrade rather than the previous build is refused unless --force. Exit status 3: "+
			"the other slot cannot boot.")
}

func runSlot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "slot", map[string]subcommand{
		"status":   {"which slot booted, what each slot holds, the last trial", slotStatus},
		"rollback": {"make the other slot the default again and reboot into it", slotRollback},
	}, args, stdout, stderr)
}

func slotStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("slot status", stdout, stderr)
	verify := fs.Bool("verify", false, "hash each slot's modules image against its root hash")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	sys, err := discoverSystem()
	if err != nil {
		return fmt.Errorf("slot status: %w", err)
	}
	st, err := update.ReadStatus(sys, update.StatusOptions{VerifyModules: *verify})
	if err != nil {
		return fmt.Errorf("slot status: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, st)
	}
	printStatus(stdout, st)
	return nil
}

func printStatus(w io.Writer, st *update.Status) {
	trialNote := ""
	if st.OnTrial {
		trialNote = " (on trial: not blessed yet)"
	}
	fmt.Fprintf(w, "booted:  slot %s%s, from %s\n", st.Active, trialNote, st.ActiveHow)
	fmt.Fprintf(w, "default: slot %s (BootOrder)", st.Default)
	if st.Next != "" {
		fmt.Fprintf(w, "; next boot: slot %s (BootNext)", st.Next)
	}
	fmt.Fprintln(w)
	if st.RollbackChecked {
		fmt.Fprintf(w, "anti-rollback minimum: %d (TPM)\n", st.MinVersion)
	} else {
		fmt.Fprintln(w, "anti-rollback minimum: unknown (no TPM)")
	}
	for _, s := range st.Slots {
		fmt.Fprintf(w, "slot %s: %s on %s: ", s.Slot, noneIfEmpty(s.Entry), strings.Join(s.ESPs, ", "))
		if s.UKI == nil {
			fmt.Fprintf(w, "%s\n", s.Problem)
			continue
		}
		fmt.Fprintf(w, "kernel %s, security version %d, build %q, modules %s", s.UKI.Kernel, s.UKI.Version, s.UKI.BuildID, s.Modules)
		if s.Problem != "" {
			fmt.Fprintf(w, "; CANNOT BOOT: %s", s.Problem)
		}
		fmt.Fprintln(w)
	}
	if r := st.Trial; r != nil {
		fmt.Fprintf(w, "last trial: slot %s (from %s), build %q, security version %d, staged %s: %s\n",
			r.Slot, noneIfEmpty(r.From), r.BuildID, r.SecurityVersion, unixTime(r.StagedAt), st.Outcome)
		if r.Step != "" || r.Reason != "" {
			fmt.Fprintf(w, "  %s: %s\n", noneIfEmpty(r.Step), r.Reason)
		}
	}
}

func noneIfEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func unixTime(t int64) string {
	if t == 0 {
		return "-"
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

func slotRollback(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("slot rollback", stdout, stderr)
	force := fs.Bool("force", false, "roll back to a slot that holds a staged or failed upgrade")
	noReboot := fs.Bool("no-reboot", false, "change BootOrder but do not reboot")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	sys, err := discoverSystem()
	if err != nil {
		return fmt.Errorf("slot rollback: %w", err)
	}
	sys.Log = logWriter(stderr, *asJSON)
	res, err := update.Rollback(ctx, sys, *force)
	if err != nil {
		if errors.Is(err, update.ErrRollbackRefused) {
			return &exitError{exitRefused, fmt.Errorf("slot rollback: %w", err)}
		}
		return fmt.Errorf("slot rollback: %w", err)
	}
	if *asJSON {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "slot %s is the default again (first in BootOrder)\n", res.To)
	}
	if *noReboot {
		return nil
	}
	return rebootHost(stderr)
}
