package vmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// event is one test2json record (cmd/test2json).
type event struct {
	Action string
	Test   string
	Output string
}

// decodeEvents converts the guest's `-test.v=test2json` output to events
// with `go tool test2json`.
func decodeEvents(raw []byte) ([]event, error) {
	gobin, err := goTool()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(gobin, "tool", "test2json")
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool test2json: %w: %s", err, stderr.Bytes())
	}
	return parseEvents(bytes.NewReader(out))
}

// parseEvents reads a stream of test2json JSON records.
func parseEvents(r io.Reader) ([]event, error) {
	var evs []event
	dec := json.NewDecoder(r)
	for {
		var e event
		err := dec.Decode(&e)
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, fmt.Errorf("parse test2json event %d: %w", len(evs)+1, err)
		}
		evs = append(evs, e)
	}
}

// resultLine matches the line ending a test, "--- PASS: TestX (0.30s)":
// test2json passes the duration through only there.
var resultLine = regexp.MustCompile(`^\s*--- (?:PASS|FAIL|SKIP): \S+ \(([0-9.]+)s\)`)

// guestTest is one guest test (or subtest) and what it printed.
type guestTest struct {
	name     string // last element of the full name
	output   strings.Builder
	action   string // "pass", "fail", "skip", or "" if it never ended
	elapsed  time.Duration
	children []*guestTest
}

// results is the tree of guest tests of one run.
type results struct {
	top    []*guestTest
	byName map[string]*guestTest
	pkg    strings.Builder // output outside any test
	failed bool            // the package itself failed
}

func buildResults(evs []event) *results {
	r := &results{byName: map[string]*guestTest{}}
	for _, e := range evs {
		if e.Test == "" {
			r.pkg.WriteString(e.Output)
			r.failed = r.failed || e.Action == "fail"
			continue
		}
		g := r.node(e.Test)
		switch e.Action {
		case "output":
			g.output.WriteString(e.Output)
			if m := resultLine.FindStringSubmatch(e.Output); m != nil {
				secs, _ := strconv.ParseFloat(m[1], 64)
				g.elapsed = time.Duration(secs * float64(time.Second))
			}
		case "pass", "fail", "skip":
			g.action = e.Action
		}
	}
	return r
}

// node returns the test named full, creating it and its parents.
func (r *results) node(full string) *guestTest {
	if g, ok := r.byName[full]; ok {
		return g
	}
	g := &guestTest{name: full}
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		g.name = full[i+1:]
		p := r.node(full[:i])
		p.children = append(p.children, g)
	} else {
		r.top = append(r.top, g)
	}
	r.byName[full] = g
	return g
}

// replay reports g as a subtest of t, mirroring its result.
func (g *guestTest) replay(t *testing.T) {
	t.Run(g.name, func(t *testing.T) {
		if out := testOutput(g.output.String()); out != "" {
			fmt.Fprint(t.Output(), out)
		}
		if g.elapsed >= 100*time.Millisecond {
			fmt.Fprintf(t.Output(), "(%v in the guest)\n", g.elapsed)
		}
		for _, c := range g.children {
			c.replay(t)
		}
		switch g.action {
		case "fail":
			t.Errorf("guest test %s failed after %v", g.name, g.elapsed)
		case "skip":
			if reason, ok := skipReason(g.output.String()); ok {
				t.Skip(reason)
			}
			t.Errorf("guest test %s skipped: a guest test must not skip unless its message starts with %q", g.name, notInVM)
		case "":
			t.Errorf("guest test %s did not finish (guest crash or timeout)", g.name)
		}
	})
}

// notInVM starts the skip message of a guest test that cannot run in a VM.
const notInVM = "not in VM:"

// logLine matches a t.Log line: "    file.go:12: message".
var logLine = regexp.MustCompile(`^\s*[^\s:]+\.go:\d+: (.*)$`)

// skipReason returns the accepted skip message in a test's output.
func skipReason(output string) (string, bool) {
	for line := range strings.Lines(output) {
		if m := logLine.FindStringSubmatch(strings.TrimRight(line, "\n")); m != nil && strings.HasPrefix(m[1], notInVM) {
			return m[1], true
		}
	}
	return "", false
}

// testOutput drops the framing lines (=== RUN, --- PASS) of a test's output.
func testOutput(output string) string {
	var b strings.Builder
	for line := range strings.Lines(output) {
		s := strings.TrimSpace(line)
		if strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// consoleTailLines is how much of the console a failure shows.
const consoleTailLines = 60

// report replays the guest results into t and, on any failure, logs what
// it takes to reproduce the boot.
func (vm *VM) report(t *testing.T, res *Result, bootErr error, cw *consoleWatch) {
	t.Helper()
	if !cw.started.IsZero() {
		t.Logf("vmtest: boot took %v (qemu start to runner start; guest uptime %ss), whole run %v",
			cw.started.Sub(res.Start).Round(time.Millisecond), cw.uptime, res.Elapsed.Round(time.Millisecond))
	}
	evs, decodeErr := decodeEvents(res.Output)
	r := buildResults(evs)
	for _, g := range r.top {
		g.replay(t)
	}
	status, exited := exitStatus(res.Console)
	if exited && errors.Is(bootErr, errNoEnd) {
		t.Logf("vmtest: %v: qemu killed after %v", errNoEnd, exitGrace)
		bootErr = nil
	}
	switch {
	case bootErr != nil:
		t.Errorf("vmtest: %v", bootErr)
	case !exited:
		t.Errorf("vmtest: the guest runner printed no exit status (%q)", "INITOS-VMTEST: exit N")
	case decodeErr != nil:
		t.Errorf("vmtest: %v", decodeErr)
	case status != 0 && !t.Failed():
		t.Errorf("vmtest: guest test binary exited with status %d:\n%s", status, r.pkg.String())
	case len(r.top) == 0:
		t.Errorf("vmtest: no guest test ran: -test.run matched nothing")
	}
	if t.Failed() {
		vm.logFailure(t, res)
	}
}

func (vm *VM) logFailure(t testing.TB, res *Result) {
	t.Helper()
	t.Logf("vmtest: qemu command line (work files in %s; keep them with %s=1):\n%s", vm.dir, envKeep, res.CommandLine())
	if len(res.Stderr) > 0 {
		t.Logf("vmtest: qemu/swtpm stderr:\n%s", res.Stderr)
	}
	t.Logf("vmtest: console tail:\n%s", tail(res.Console, consoleTailLines))
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r", ""), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
