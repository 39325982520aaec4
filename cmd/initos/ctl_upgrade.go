package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"initos/control/client"
	"initos/update"
)

func init() {
	describe("ctl upgrade", "--from REF [--root-image REF] [--canary K] [--batch N] [--trial-timeout 15m] [--json]",
		"Upgrade booted InitOS hosts (--host H, or every host of --hosts FILE, in order) from the artifacts at REF, "+
			"as the hosts see it (a registry reference, pulled by each host pinned to its digest). Each host is "+
			"reached over SSH like every ctl verb (its OpenSSH sshd on the same port, its host key pinned in "+
			"known_hosts) and runs `initos upgrade --json --from REF`, which stages its inactive slot and reboots "+
			"into the trial; ctl then polls `initos slot status --json` until a new boot reports the trial blessed "+
			"(the new slot booted and passed its health gate) or failed (the host is back on its old slot, and "+
			"the record says where and why). The first K hosts go alone (the canaries), then N at a time; the "+
			"rollout stops at the first batch with a host that did not bless, and the hosts after it are not "+
			"touched. One result per host (blessed, failed, error, skipped) is printed, or a JSON array with "+
			"--json. Exit status 1 when the rollout stopped.")
}

func ctlUpgrade(ctx context.Context, o client.Options, host, hostsFile string, args []string, asJSON bool, stdout, stderr io.Writer) error {
	fs := newFlags("ctl upgrade", stdout, stderr)
	from := fs.String("from", "", "the artifacts' registry `REF`, as the hosts reach it")
	root := fs.String("root-image", "", "a root image `REF` for the new slots")
	canary := fs.Int("canary", 1, "hosts upgraded first, alone")
	batch := fs.Int("batch", 1, "hosts upgraded at once after the canaries")
	timeout := fs.Duration("trial-timeout", 15*time.Minute, "the `time` one host may take: staging, reboot, trial, bless")
	poll := fs.Duration("poll", 5*time.Second, "how often to ask a rebooting host for its status")
	jsonFlag := fs.Bool("json", false, "print the results as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *from == "":
		return usageError(fs, "--from is required")
	case *canary < 1 || *batch < 1:
		return usageError(fs, "--canary %d, --batch %d: want at least 1", *canary, *batch)
	}
	hosts := []string{host}
	if hostsFile != "" {
		var err error
		if hosts, err = client.ReadHosts(hostsFile); err != nil {
			return err
		}
	}
	ro := update.RolloutOptions{From: *from, RootImage: *root, Canary: *canary, Batch: *batch, TrialTimeout: *timeout, Poll: *poll, Log: stderr}
	res, err := update.Rollout(ctx, sshRemote{o}, hosts, ro)
	if perr := printRollout(stdout, res, asJSON || *jsonFlag); perr != nil {
		return perr
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return &exitError{exitSignal, fmt.Errorf("ctl upgrade: %w", err)}
	case err != nil:
		return &exitError{1, fmt.Errorf("ctl upgrade: %w", err)}
	}
	return nil
}

// sshRemote runs initos commands over the control plane client's SSH.
type sshRemote struct{ o client.Options }

func (r sshRemote) Run(ctx context.Context, host string, args []string) ([]byte, int, error) {
	var out, errb bytes.Buffer
	code, err := r.o.Run(ctx, host, shellJoin(args), nil, &out, &errb)
	if err == nil && code != 0 && out.Len() == 0 {
		out = errb
	}
	return out.Bytes(), code, err
}

// shellJoin quotes args for the remote user's shell (OpenSSH runs the
// command line through it).
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

func printRollout(w io.Writer, res []update.HostResult, asJSON bool) error {
	if asJSON {
		if res == nil {
			res = []update.HostResult{}
		}
		return writeJSON(w, res)
	}
	for _, r := range res {
		fmt.Fprintf(w, "== %s: %s", r.Host, r.State)
		if r.Phase != "" && r.State != update.HostSkipped {
			fmt.Fprintf(w, " (%s, %.0fs)", r.Phase, r.Seconds)
		}
		fmt.Fprintln(w)
		if r.To != "" {
			fmt.Fprintf(w, "   slot %s -> %s, build %q\n", r.From, r.To, r.BuildID)
		}
		switch {
		case r.Step != "":
			fmt.Fprintf(w, "   %s: %s\n", r.Step, r.Reason)
		case r.Reason != "":
			fmt.Fprintf(w, "   %s\n", r.Reason)
		}
	}
	return nil
}
