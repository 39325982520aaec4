package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// narrator prints the demo: one line a stage, each command the way a
// user types it (the work directory shown as $WORK), and its output.
type narrator struct {
	out    io.Writer
	work   string // replaced by $WORK in what is printed
	initos string // the initos binary
	repo   string // the repository (images/*/build.sh)
	start  time.Time
	stages []stageTime
	cur    *stageTime
}

type stageTime struct {
	title   string
	elapsed time.Duration
	started time.Time
}

// stage starts stage n.
func (n *narrator) stage(title string) {
	n.endStage()
	n.stages = append(n.stages, stageTime{title: title, started: time.Now()})
	n.cur = &n.stages[len(n.stages)-1]
	fmt.Fprintf(n.out, "\n== %s\n", title)
}

func (n *narrator) endStage() {
	if n.cur != nil {
		n.cur.elapsed = time.Since(n.cur.started)
		fmt.Fprintf(n.out, "   (%s)\n", n.cur.elapsed.Round(time.Second))
		n.cur = nil
	}
}

// say prints one line of narration.
func (n *narrator) say(format string, args ...any) {
	fmt.Fprintf(n.out, "%s\n", n.hide(fmt.Sprintf(format, args...)))
}

func (n *narrator) hide(s string) string { return strings.ReplaceAll(s, n.work, "$WORK") }

// quote prints args as a shell would need them.
func quote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$&|;<>()*?#~\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// cmd describes one command run by the demo.
type cmd struct {
	name   string
	args   []string
	keep   func(line string) bool // which output lines to print (nil: all)
	quiet  bool                   // print neither the command nor its output
	stdin  []byte
	stdout *bytes.Buffer // receives the whole stdout when set
}

// run runs c, printing "$ NAME ARGS" and its (filtered) output indented.
// The initos binary is shown as "initos".
func (n *narrator) run(ctx context.Context, c cmd) error {
	shown, path := c.name, c.name
	if c.name == "initos" {
		path = n.initos
	}
	if !c.quiet {
		fmt.Fprintf(n.out, "$ %s\n", n.hide(quote(append([]string{shown}, c.args...))))
	}
	x := exec.CommandContext(ctx, path, c.args...)
	x.Dir = n.repo
	var out, errOut bytes.Buffer
	x.Stdout, x.Stderr = &out, &out
	if c.stdout != nil { // two writers: stderr apart (one goroutine each)
		x.Stdout, x.Stderr = io.MultiWriter(&out, c.stdout), &errOut
	}
	if c.stdin != nil {
		x.Stdin = bytes.NewReader(c.stdin)
	}
	err := x.Run()
	out.Write(errOut.Bytes())
	if !c.quiet || err != nil {
		for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			if line != "" && (c.keep == nil || c.keep(line) || err != nil) {
				fmt.Fprintf(n.out, "  %s\n", n.hide(line))
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", quote(append([]string{shown}, c.args...)), err)
	}
	return nil
}

// summary prints the stage times.
func (n *narrator) summary(ok bool) {
	n.endStage()
	fmt.Fprintf(n.out, "\n")
	for _, s := range n.stages {
		fmt.Fprintf(n.out, "%8s  %s\n", s.elapsed.Round(time.Second), s.title)
	}
	word := "OK"
	if !ok {
		word = "FAILED"
	}
	fmt.Fprintf(n.out, "InitOS full demo: %s in %s\n", word, time.Since(n.start).Round(time.Second))
}

// exitStatus returns the exit status of a command's error (0 for nil,
// -1 when it did not exit).
func exitStatus(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	os.Exit(1)
}
