package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

// runCLI runs initos with args and returns its stdout and error; stderr
// is logged when the command fails.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	if err != nil {
		t.Logf("initos %q: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return stdout.String(), err
}

// mustRun runs initos with args, fails t if the command fails, and
// returns its stdout.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("initos %q = %v, want success", args, err)
	}
	return out
}

// mustFail runs initos with args and fails t if the command succeeds.
func mustFail(t *testing.T, args ...string) error {
	t.Helper()
	_, err := runCLI(t, args...)
	if err == nil {
		t.Errorf("initos %q succeeded, want an error", args)
	}
	return err
}

func TestRunUsage(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		status int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"frobnicate"}, 2},
		{[]string{"luks"}, 2},
		{[]string{"luks", "help"}, 0},
		{[]string{"luks", "frobnicate"}, 2},
		{[]string{"luks", "dump", "-h"}, 0},
		{[]string{"luks", "dump", "--no-such-flag", "x"}, 2},
		{[]string{"luks", "dump"}, 2},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if got := exitCode(err, io.Discard); got != tt.status {
			t.Errorf("initos %q: exit status %d (%v), want %d", tt.args, got, err, tt.status)
		}
		switch {
		case tt.status == 2 && !strings.Contains(stderr.String(), "usage:"):
			t.Errorf("initos %q printed no usage on stderr:\n%s", tt.args, stderr.String())
		case tt.status == 0 && (!strings.Contains(stdout.String(), "usage:") || stderr.Len() != 0):
			t.Errorf("initos %q: help must go to stdout only; stdout:\n%s\nstderr:\n%s", tt.args, stdout.String(), stderr.String())
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{flag.ErrHelp, 0},
		{errors.New("boom"), 1},
		{fmt.Errorf("%w: bad flag", errUsage), 2},
		{&exitError{3, errors.New("three")}, 3},
		{fmt.Errorf("wrapped: %w", &exitError{2, errUsage}), 2},
	} {
		var stderr bytes.Buffer
		if got := exitCode(tt.err, &stderr); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
		if printed := stderr.Len() > 0; printed != (tt.want != 0) {
			t.Errorf("exitCode(%v) printed %q", tt.err, stderr.String())
		}
	}
}

func TestParseFlagsArgCount(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		min, max int
		want     string
	}{
		{nil, 1, 1, "(0, want 1)"},
		{[]string{"a", "b", "c"}, 1, 2, "(3, want 1 to 2)"},
		{nil, 1, -1, "(0, want at least 1)"},
	} {
		fs := newFlags("test", io.Discard, io.Discard)
		_, err := parseFlags(fs, tt.args, tt.min, tt.max)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q, %d, %d) = %v, want a usage error containing %q", tt.args, tt.min, tt.max, err, tt.want)
		}
	}
	fs := newFlags("test", io.Discard, io.Discard)
	v := fs.Bool("v", false, "")
	pos, err := parseFlags(fs, []string{"a", "-v", "b", "--", "-c"}, 0, -1)
	if err != nil || !*v || strings.Join(pos, " ") != "a b -c" {
		t.Errorf("parseFlags(a -v b -- -c) = %q, %v (v=%t), want [a b -c] with -v", pos, err, *v)
	}
}
