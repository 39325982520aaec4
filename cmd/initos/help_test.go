package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEveryVerbHelp walks every command group and verb through --help:
// each prints its usage on stdout only, exits 0, has a description
// registered with describe, and spells its flags --flag.
func TestEveryVerbHelp(t *testing.T) {
	var walk func(path []string)
	seen := 0
	walk = func(path []string) {
		args := append(append([]string{}, path...), "--help")
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if code := exitCode(err, &bytes.Buffer{}); code != 0 || stderr.Len() != 0 {
			t.Errorf("initos %s: exit %d, stderr %q; want 0 and help on stdout only", strings.Join(args, " "), code, stderr.String())
			return
		}
		out := stdout.String()
		if subs := listed(out); subs != nil {
			// The group's own path, from its usage line ("initos efi --help"
			// describes "efi boot").
			if group, _, ok := strings.Cut(strings.TrimPrefix(out, "usage: initos "), " SUBCOMMAND"); ok {
				path = strings.Fields(group)
			}
			for _, s := range subs {
				walk(append(append([]string{}, path...), s))
			}
			return
		}
		seen++
		verb := strings.Join(path, " ")
		if _, ok := verbDocs[verb]; !ok {
			t.Errorf("initos %s --help: no description registered with describe(%q, ...)", verb, verb)
		}
		if strings.Contains(out, "\n  -") && !strings.Contains(out, "\n  --") && !onlyShortFlags(out) {
			t.Errorf("initos %s --help spells flags with one dash:\n%s", verb, out)
		}
	}
	walk(nil)
	if seen < 50 {
		t.Errorf("walked %d verbs, want at least 50: the walk lost its way", seen)
	}
}

// listed returns the names under "commands:" or "subcommands:" in a
// group's help, or nil for a verb's help.
func listed(help string) []string {
	_, rest, ok := strings.Cut(help, "commands:\n")
	if !ok || !strings.HasPrefix(help, "usage: initos ") || strings.Contains(help, "\nflags:") {
		return nil
	}
	var names []string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		names = append(names, strings.Fields(line)[0])
	}
	return names
}

func onlyShortFlags(help string) bool {
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") && len(strings.Fields(line)[0]) > 2 {
			return false
		}
	}
	return true
}
