// Command initos is the InitOS CLI for the trusted build machine and for
// admins: it formats and verifies dm-verity trees, builds and signs UKIs,
// manages LUKS2 volumes, TPM2 seals, Secure Boot keys and image subvolumes.
//
// Each capability lives in a library package; this command is a thin layer
// that parses flags and calls it. Subcommands register themselves in the
// commands table from their own file (verity.go, dm.go, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one top-level subcommand ("verity", "luks", ...).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is filled by init functions in the subcommand files.
var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	if _, dup := commands[name]; dup {
		panic("initos: command registered twice: " + name)
	}
	commands[name] = command{summary: summary, run: run}
}

// errUsage marks an error caused by bad command-line use (exit status 2).
var errUsage = errors.New("usage")

// exitError carries a specific exit status (e.g. "verify: corrupt" = 1)
// without printing anything more than its message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

// runMain runs the command with SIGINT and SIGTERM cancelling its context
// and returns the exit status: 128+signal when a signal stopped it.
func runMain(args []string, stdout, stderr io.Writer) int {
	ctx, stop := notifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, args, stdout, stderr)
	stop()
	return exitCode(withCause(ctx, err), stderr)
}

// signalCause is the cancellation cause of the command's context when a
// signal arrives; exitCode turns it into status 128+signal (130 for
// SIGINT, 143 for SIGTERM). It matches context.Canceled.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string        { return s.sig.String() }
func (s signalCause) Is(target error) bool { return target == context.Canceled }

// notifyContext is signal.NotifyContext with a cause that names the signal.
func notifyContext(parent context.Context, sigs ...os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			sig, _ := s.(syscall.Signal)
			cancel(signalCause{sig})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}

// withCause adds the signal that cancelled ctx to an error that reports
// the cancellation without it (a verb returning ctx.Err()).
func withCause(ctx context.Context, err error) error {
	var sc signalCause
	if err == nil || !errors.Is(err, context.Canceled) || errors.As(err, &sc) {
		return err
	}
	if errors.As(context.Cause(ctx), &sc) {
		return fmt.Errorf("%w (%w)", err, sc)
	}
	return err
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "initos:", err)
	var ee *exitError
	var sc signalCause
	switch {
	case errors.As(err, &sc):
		return 128 + int(sc.sig)
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	if isHelp(args[0]) {
		usage(stdout)
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: initos COMMAND [ARGS]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'initos COMMAND --help' for its subcommands.")
}
