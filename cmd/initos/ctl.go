package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/control/client"
)

func init() {
	register("ctl", "run a control-plane verb on a host or a fleet over SSH", runCtl)
	describe("ctl", "[--host H | --hosts FILE] [--identity KEY] [--known-hosts F] [--json] VERB [ARGS]",
		"Runs a verb of the InitOS control plane (the initrd's SSH server) on one host, or in parallel on "+
			"every host of a hosts file (one host or host:port a line). Verbs: status, unlock [--reseal] (key on stdin), "+
			"logs [-f], pcrs, reseal, reboot, poweroff, boot-slot A|B, install (config on stdin), help; and upgrade --from REF [--canary K] [--batch N] on booted hosts (docs/update.md). "+
			"Host keys must be pinned in the known_hosts file (the installer records the TPM host key there): "+
			"an unknown host or another key is refused. With one host the verb's output and exit status pass "+
			"through (255: the host could not be reached or authenticated); with --hosts each host gets a "+
			"result, and the exit status is 1 if any failed. --json asks the verb for JSON; with --hosts it "+
			"prints one JSON array of {host, exit, error, answer, stdout, stderr, seconds}.")
}

// ctlStdin is the standard input given to unlock and install (a variable
// for tests).
var ctlStdin io.Reader = os.Stdin

// verbsWithStdin read stdin on the host; other verbs get an empty stdin.
var verbsWithStdin = map[string]bool{"unlock": true, "install": true}

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ctl", stdout, stderr)
	host := fs.String("host", "", "the host `H` (or H:port) to run the verb on")
	hostsFile := fs.String("hosts", "", "a `FILE` of hosts to run the verb on in parallel")
	identity := fs.String("identity", "", "private `KEY` file to log in with (default: ssh-agent, ~/.ssh/id_*)")
	knownHosts := fs.String("known-hosts", client.DefaultKnownHosts(), "known_hosts `FILE` pinning the host keys")
	jsonOut := fs.Bool("json", false, "JSON output")
	parallel := fs.Int("parallel", 16, "hosts at once with --hosts")
	timeout := fs.Duration("timeout", 20*time.Second, "connect and handshake timeout per host")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return err
		}
		return usageError(fs, "%v", err)
	}
	verb := fs.Args()
	switch {
	case len(verb) == 0:
		return usageError(fs, "no verb given")
	case (*host == "") == (*hostsFile == ""):
		return usageError(fs, "give exactly one of --host and --hosts")
	case *parallel < 1:
		return usageError(fs, "--parallel %d: want at least 1", *parallel)
	}
	o := client.Options{KnownHosts: *knownHosts, Timeout: *timeout}
	closeIDs, err := ctlIdentities(&o, *identity)
	if err != nil {
		return err
	}
	defer closeIDs()
	if verb[0] == "upgrade" { // runs `initos upgrade` on booted hosts (ctl_upgrade.go)
		return ctlUpgrade(ctx, o, *host, *hostsFile, verb[1:], *jsonOut, stdout, stderr)
	}
	command := strings.Join(verb, " ")
	if *jsonOut {
		command += " --json"
	}
	var stdin io.Reader = bytes.NewReader(nil)
	if verbsWithStdin[verb[0]] {
		stdin = ctlStdin
	}
	if *host != "" {
		return ctlOne(ctx, o, *host, command, stdin, stdout, stderr)
	}
	hosts, err := client.ReadHosts(*hostsFile)
	if err != nil {
		return err
	}
	in, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
	if err != nil {
		return fmt.Errorf("ctl: read stdin: %w", err)
	}
	return ctlFleet(ctx, o, hosts, command, in, *parallel, *jsonOut, stdout)
}

// ctlIdentities fills o.Identities from --identity or the defaults.
func ctlIdentities(o *client.Options, path string) (func(), error) {
	if path != "" {
		s, err := client.LoadIdentity(path)
		if err != nil {
			return nil, err
		}
		o.Identities = []ssh.Signer{s}
		return func() {}, nil
	}
	ids, closeFn, err := client.DefaultIdentities()
	if err != nil {
		return nil, err
	}
	o.Identities = ids
	return closeFn, nil
}

// ctlOne streams the verb's output; its exit status becomes ours.
func ctlOne(ctx context.Context, o client.Options, host, command string, stdin io.Reader, stdout, stderr io.Writer) error {
	code, err := o.Run(ctx, host, command, stdin, stdout, stderr)
	switch {
	case err != nil:
		return &exitError{255, err}
	case code != 0:
		return &exitError{code, fmt.Errorf("ctl: %s: %q exited %d", host, command, code)}
	}
	return nil
}

// ctlFleet runs the verb on every host and prints one result a host.
func ctlFleet(ctx context.Context, o client.Options, hosts []string, command string, stdin []byte, parallel int, jsonOut bool, stdout io.Writer) error {
	res := o.RunAll(ctx, hosts, command, stdin, parallel)
	failed := 0
	for _, r := range res {
		if !r.OK() {
			failed++
		}
	}
	if jsonOut {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		for _, r := range res {
			writeResult(stdout, r)
		}
	}
	if failed > 0 {
		return &exitError{1, fmt.Errorf("ctl: %q failed on %d of %d hosts", command, failed, len(hosts))}
	}
	return nil
}

// writeResult prints one host's result: a header line, then its output
// indented.
func writeResult(w io.Writer, r client.Result) {
	state := fmt.Sprintf("exit %d", r.Exit)
	if r.Error != "" {
		state = "error: " + r.Error
	}
	fmt.Fprintf(w, "== %s: %s (%.2fs)\n", r.Host, state, r.Seconds)
	for _, text := range []string{r.Stdout, string(r.Answer), r.Stderr} {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if line != "" {
				fmt.Fprintf(w, "   %s\n", line)
			}
		}
	}
}
