package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// verb is one command of the control plane.
type verb struct {
	usage   string // arguments after the verb
	about   string
	install bool // only in install mode
	run     func(r *request) error
}

// verbTable lists every verb. There is deliberately no shell.
var verbTable map[string]verb

func init() {
	verbTable = map[string]verb{
		"help":      {"", "list the verbs", false, (*request).help},
		"status":    {"[--json]", "boot stage, failure (with PCRs), disks, volumes, slot", false, (*request).status},
		"unlock":    {"[--json] < KEY", "open the volumes with a passphrase or recovery key read from stdin; the boot continues", false, (*request).unlock},
		"logs":      {"[-f] [--json]", "the kernel log ring; -f follows it", false, (*request).logs},
		"pcrs":      {"[--json]", "live PCRs beside the policy's, and the TPM event log", false, (*request).pcrs},
		"reseal":    {"[--json]", "re-enroll the TPM token against the current PCR 7 (after a recovery-key unlock)", false, (*request).reseal},
		"reboot":    {"", "reboot", false, func(r *request) error { return r.power("reboot", r.s.backend.Reboot) }},
		"poweroff":  {"", "power off", false, func(r *request) error { return r.power("poweroff", r.s.backend.PowerOff) }},
		"boot-slot": {"[--json] A|B", "boot slot A or B once (BootNext)", false, (*request).bootSlot},
		"install":   {"[--json] < CONFIG", "run the unattended install with the config on stdin", true, (*request).install},
	}
}

// codeError is an error with its exit status.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &codeError{ExitUsage, fmt.Errorf(format, args...)}
}

// run parses command, checks the permissions and runs the verb. It writes
// errors on stderr (and as JSON on stdout with --json) and returns the
// exit status.
func (r *request) run(command string) int {
	fields := strings.Fields(command)
	for _, f := range fields {
		if f == "--json" || f == "-json" {
			r.json = true
		} else {
			r.args = append(r.args, f)
		}
	}
	err := r.dispatch()
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	var ce *codeError
	if errors.As(err, &ce) {
		code = ce.code
	}
	fmt.Fprintf(r.stderr, "initos: %v\n", err)
	if r.json {
		r.writeJSON(struct {
			Error string `json:"error"`
			Exit  int    `json:"exit"`
		}{err.Error(), code})
	}
	return code
}

func (r *request) dispatch() error {
	if len(r.args) == 0 {
		return usagef("no verb given (try: help)")
	}
	r.verb, r.args = r.args[0], r.args[1:]
	v, ok := verbTable[r.verb]
	if !ok || (v.install && !r.s.cfg.Install) {
		return usagef("unknown verb %q (try: help)", r.verb)
	}
	if !allowed(r.perms, r.verb) {
		return &codeError{ExitDenied, fmt.Errorf("%s: not allowed for %s", r.verb, identity(r.perms))}
	}
	return v.run(r)
}

// noArgs refuses extra arguments.
func (r *request) noArgs() error {
	if len(r.args) > 0 {
		return usagef("%s: unexpected arguments %q (usage: %s %s)", r.verb, r.args, r.verb, verbTable[r.verb].usage)
	}
	return nil
}

func (r *request) writeJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = r.stdout.Write(append(b, '\n'))
	return err
}

func (r *request) help() error {
	names := make([]string, 0, len(verbTable))
	for n, v := range verbTable {
		if (!v.install || r.s.cfg.Install) && allowed(r.perms, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(r.stdout, "usage: ssh %s@HOST VERB [ARGS]\n\nverbs:\n", User)
	for _, n := range names {
		v := verbTable[n]
		fmt.Fprintf(r.stdout, "  %-28s %s\n", strings.TrimSpace(n+" "+v.usage), v.about)
	}
	return nil
}

func (r *request) status() error {
	if err := r.noArgs(); err != nil {
		return err
	}
	st, err := r.s.backend.Status(r.ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	st.WrongKeys = r.s.keys.wrongKeys()
	if r.json {
		return r.writeJSON(st)
	}
	return writeStatus(r.stdout, st)
}

func (r *request) pcrs() error {
	if err := r.noArgs(); err != nil {
		return err
	}
	rep, err := r.s.backend.PCRs(r.ctx)
	if err != nil {
		return fmt.Errorf("pcrs: %w", err)
	}
	if r.json {
		return r.writeJSON(rep)
	}
	return writePCRs(r.stdout, rep)
}

func (r *request) reseal() error {
	if err := r.noArgs(); err != nil {
		return err
	}
	done, err := r.s.backend.Reseal(r.ctx)
	if err != nil {
		return fmt.Errorf("reseal: %w", err)
	}
	if r.json {
		return r.writeJSON(struct {
			Resealed []string `json:"resealed"`
		}{done})
	}
	for _, l := range done {
		fmt.Fprintf(r.stdout, "resealed: %s\n", l)
	}
	return nil
}

// power answers first, then reboots or powers off once the channel is
// closed, so the client gets its exit status.
func (r *request) power(what string, f func(context.Context) error) error {
	if err := r.noArgs(); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "%s: now\n", what)
	logf := r.s.cfg.Logf
	r.after = func() {
		time.Sleep(100 * time.Millisecond) // let the close reach the client
		if err := f(context.Background()); err != nil {
			logf("control: %s: %v", what, err)
		}
	}
	return nil
}

func (r *request) bootSlot() error {
	if len(r.args) != 1 || !slices.Contains([]string{"A", "B"}, strings.ToUpper(r.args[0])) {
		return usagef("boot-slot: want one slot, A or B, got %q", r.args)
	}
	slot := strings.ToUpper(r.args[0])
	if err := r.s.backend.BootNext(r.ctx, slot); err != nil {
		return fmt.Errorf("boot-slot %s: %w", slot, err)
	}
	if r.json {
		return r.writeJSON(struct {
			BootNext string `json:"boot_next"`
		}{slot})
	}
	fmt.Fprintf(r.stdout, "boot-slot: the next boot (only) starts slot %s\n", slot)
	return nil
}

func (r *request) install() error {
	if err := r.noArgs(); err != nil {
		return err
	}
	cfg, err := readInput(r.ctx, r.stdin, maxInstallConfig, inputTimeout)
	if err != nil {
		return usagef("install: config on stdin: %v", err)
	}
	if err := r.s.backend.Install(r.ctx, cfg, r.stdout); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// maxInstallConfig bounds the install config read from stdin.
const maxInstallConfig = 1 << 20

// inputTimeout bounds the wait for stdin (unlock key, install config).
const inputTimeout = 2 * time.Minute

// readInput reads r to EOF, at most max bytes, within timeout.
func readInput(ctx context.Context, r io.Reader, max int, timeout time.Duration) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		ch <- result{b, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res := <-ch:
		switch {
		case res.err != nil:
			return nil, res.err
		case len(res.b) > max:
			clear(res.b)
			return nil, fmt.Errorf("more than %d bytes", max)
		}
		return res.b, nil
	case <-t.C:
		return nil, fmt.Errorf("nothing ended within %v (close stdin: pipe the input in)", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
