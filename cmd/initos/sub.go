package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// subcommand is one verb of a command group ("verity format", "luks open").
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// dispatch runs the verb named by args[0] from a command group. Help goes
// to stdout (exit 0); a missing or unknown verb prints the list on stderr
// and is a usage error (exit 2).
func dispatch(ctx context.Context, group string, subs map[string]subcommand, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		subUsage(stderr, group, subs)
		return fmt.Errorf("%w: initos %s: no subcommand given", errUsage, group)
	}
	if isHelp(args[0]) {
		subUsage(stdout, group, subs)
		return nil
	}
	s, ok := subs[args[0]]
	if !ok {
		subUsage(stderr, group, subs)
		return fmt.Errorf("%w: initos %s: unknown subcommand %q", errUsage, group, args[0])
	}
	return s.run(ctx, args[1:], stdout, stderr)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

func subUsage(w io.Writer, group string, subs map[string]subcommand) {
	fmt.Fprintf(w, "usage: initos %s SUBCOMMAND [FLAGS] [ARGS]\n\nsubcommands:\n", group)
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, subs[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'initos %s SUBCOMMAND --help' for its arguments and flags.\n", group)
}

// verbDoc is the help text of one verb: its positional arguments and a
// one-paragraph description. Each command file registers its verbs' docs
// with describe in an init function.
type verbDoc struct{ args, about string }

var verbDocs = map[string]verbDoc{}

// describe registers the help text of the verb "GROUP VERB": args is the
// synopsis after the verb ("[FLAGS] DATA HASH"), about a paragraph.
func describe(verb, args, about string) {
	if _, dup := verbDocs[verb]; dup {
		panic("initos: verb described twice: " + verb)
	}
	verbDocs[verb] = verbDoc{args: args, about: about}
}

// newFlags returns the FlagSet of "initos VERB" (VERB = "group verb").
// Parse errors are returned, never printed by the flag package; --help
// prints the verb's usage on stdout.
func newFlags(verb string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("initos "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeUsage(stdout, fs) }
	return fs
}

// writeUsage prints "usage: initos VERB ARGS", the description and the
// flags (as --flag) of fs to w.
func writeUsage(w io.Writer, fs *flag.FlagSet) {
	verb := strings.TrimPrefix(fs.Name(), "initos ")
	d, ok := verbDocs[verb]
	if !ok {
		d.args = "[FLAGS] [ARGS]"
	}
	fmt.Fprintf(w, "usage: initos %s %s\n", verb, d.args)
	if d.about != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(d.about, 78))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.VisitAll(func(f *flag.Flag) { writeFlag(w, f) })
}

// writeFlag prints one flag like flag.PrintDefaults, but spelled --name.
func writeFlag(w io.Writer, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if len(f.Name) == 1 {
		line = "  -" + f.Name
	}
	if name != "" {
		line += " " + name
	}
	if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "[]" {
		usage += fmt.Sprintf(" (default %s)", def)
	}
	if len(line) <= 22 {
		fmt.Fprintf(w, "%-24s%s\n", line, usage)
		return
	}
	fmt.Fprintf(w, "%s\n%24s%s\n", line, "", usage)
}

// wrap folds a paragraph at width columns.
func wrap(s string, width int) string {
	var b strings.Builder
	col := 0
	for _, word := range strings.Fields(s) {
		if col > 0 && col+1+len(word) > width {
			b.WriteByte('\n')
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

// parseFlags parses args allowing flags to follow positional arguments
// (cryptsetup style: "format DATA HASH --salt -"), and checks the number of
// positional arguments is within [min, max] (max < 0: unbounded). --help
// prints the usage on stdout and returns flag.ErrHelp (exit 0); every
// other problem is a usage error (exit 2) whose message names it, with the
// usage on stderr.
func parseFlags(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				usage()
				return nil, err
			}
			writeUsage(out, fs)
			return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
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
		writeUsage(out, fs)
		return nil, fmt.Errorf("%w: %s: wrong number of arguments (%d, want %s)", errUsage, fs.Name(), len(pos), argRange(min, max))
	}
	return pos, nil
}

// usageError prints the usage of fs on its error output and returns a
// usage error (exit 2) with the message.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	writeUsage(fs.Output(), fs)
	return fmt.Errorf("%w: %s: %s", errUsage, fs.Name(), fmt.Sprintf(format, args...))
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

// writeJSON prints v as indented JSON (the --json output of every verb:
// snake_case keys, one document, a trailing newline).
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
