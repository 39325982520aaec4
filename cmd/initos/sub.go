package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
)

// subcommand is one verb of a command group ("verity format", "luks open").
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// dispatch runs the verb named by args[0] from a command group.
func dispatch(ctx context.Context, group string, subs map[string]subcommand, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		subUsage(stderr, group, subs)
		if len(args) == 0 {
			return fmt.Errorf("%w: initos %s: no subcommand given", errUsage, group)
		}
		return nil
	}
	s, ok := subs[args[0]]
	if !ok {
		subUsage(stderr, group, subs)
		return fmt.Errorf("%w: initos %s: unknown subcommand %q", errUsage, group, args[0])
	}
	return s.run(ctx, args[1:], stdout, stderr)
}

func subUsage(w io.Writer, group string, subs map[string]subcommand) {
	fmt.Fprintf(w, "usage: initos %s SUBCOMMAND [FLAGS] [ARGS]\n\nsubcommands:\n", group)
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, subs[n].summary)
	}
}

// newFlags returns a FlagSet for "initos GROUP VERB" that reports errors
// instead of exiting, writing its usage to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("initos "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args allowing flags to follow positional arguments
// (cryptsetup style: "format DATA HASH --salt -"), and checks the number of
// positional arguments is within [min, max] (max < 0: unbounded).
func parseFlags(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		fs.Usage()
		return nil, fmt.Errorf("%w: %s: wrong number of arguments (%d, want %s)", errUsage, fs.Name(), len(pos), argRange(min, max))
	}
	return pos, nil
}

// argRange spells the allowed number of positional arguments.
func argRange(min, max int) string {
	switch {
	case max < 0:
		return fmt.Sprintf("at least %d", min)
	case min == max:
		return fmt.Sprint(min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}
