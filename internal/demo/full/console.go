package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// ansi matches terminal colour and cursor codes (systemd's status lines,
// OVMF's screen control).
var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// stamp is the kernel's time stamp at the start of a line.
var stamp = regexp.MustCompile(`^\[\s*[0-9]+\.[0-9]+\]\s*`)

// shown are the console lines the demo prints (indented): initos-init's
// and the installer's steps, the firmware's refusals, the kernel's
// verity errors, systemd's milestones and the trial's outcome.
var shown = regexp.MustCompile(strings.Join([]string{
	`^initos: (install: |trial|rollback|unlock: done|root: done|handover|modules: \S+ verified)`,
	`^(InitOS install .*installed|UKI: .* signed by|root: images/|Secure Boot: |TPM: enrolled|Boot[0-9A-F]{4} "InitOS|steps: )`,
	`FAILED`,
	`Access Denied`,
	`device-mapper: verity.*corrupted`,
	`Secure boot (enabled|disabled)`,
	`Welcome to .*Debian`,
	`Reached target.*Multi-User|Started .*ssh\.service`,
	`initos-bless|[Bb]less`,
	`reboot: (Restarting|Power down)`,
}, "|"))

// skipped are shown lines not worth a line of the demo.
var skipped = regexp.MustCompile(`^initos: (trial|handover): done in `)

// console receives a VM's console: it keeps all of it (and a log file),
// prints the lines the demo shows with a "  | " margin, and signals the
// first line matching each of its triggers.
type console struct {
	mu       sync.Mutex
	out      io.Writer
	log      io.Writer
	all      bytes.Buffer
	partial  []byte
	triggers []*trigger
}

// trigger is closed the first time a line matches re.
type trigger struct {
	re   *regexp.Regexp
	hit  chan struct{}
	done bool
}

// on returns a channel closed once a console line matches re.
func (c *console) on(re string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &trigger{re: regexp.MustCompile(re), hit: make(chan struct{})}
	c.triggers = append(c.triggers, t)
	return t.hit
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all.Write(p)
	if c.log != nil {
		c.log.Write(p)
	}
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.line(string(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	return len(p), nil
}

// line handles one whole console line.
func (c *console) line(s string) {
	s = strings.TrimSpace(ansi.ReplaceAllString(strings.ReplaceAll(s, "\r", ""), ""))
	s = stamp.ReplaceAllString(s, "")
	if s == "" {
		return
	}
	if shown.MatchString(s) && !skipped.MatchString(s) {
		if len(s) > 150 {
			s = s[:150] + "..."
		}
		fmt.Fprintf(c.out, "  | %s\n", s)
	}
	for _, t := range c.triggers {
		if !t.done && t.re.MatchString(s) {
			t.done = true
			close(t.hit)
		}
	}
}

// contains reports whether the console so far matches re.
func (c *console) contains(re string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return regexp.MustCompile(re).Match(ansi.ReplaceAll(c.all.Bytes(), nil))
}
