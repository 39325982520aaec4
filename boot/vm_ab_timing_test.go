//go:build !vmguest

package boot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"initos/update"
)

// lineClock timestamps the root's marker lines as the console streams
// them (host wall time), for the wall times between the steps of the run,
// and calls onCut when the root asks for the power cut.
type lineClock struct {
	start   time.Time
	partial []byte
	lines   []string        // marker lines, from the marker on
	at      []time.Duration // when each arrived
	onCut   func()
}

// clockMarkers are the lines lineClock keeps.
var clockMarkers = []string{"AB-", "Kernel panic", "initos: FAILED: "}

func (c *lineClock) Write(p []byte) (int, error) {
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := strings.TrimRight(string(c.partial[:i]), "\r")
		c.partial = c.partial[i+1:]
		for _, m := range clockMarkers {
			if j := strings.Index(line, m); j >= 0 {
				c.lines, c.at = append(c.lines, line[j:]), append(c.at, time.Since(c.start))
				if strings.HasPrefix(line[j:], "AB-POWERCUT") && c.onCut != nil {
					c.onCut()
				}
				break
			}
		}
	}
}

// abClasses names the failure class of each build the run stages.
var abClasses = map[string]string{
	"ab good":   "good upgrade, blessed",
	"ab broken": "an initrd step fails (root)",
	"ab panic":  "kernel panic before initos-init",
	"ab hang":   "hang after switch_root, watchdog reset",
	"ab health": "health gate fails (bless reboots)",
	"rollback":  "UKI below the TPM minimum, initrd refuses to unseal",
}

// report logs the marks, then one AB-TIMING line per measurement (a
// stable form, for docs/update.md): each staging (guest wall time, bytes
// written), and for each trial the host wall time from the upgrade
// command and from the trial's reboot to its end: bless done, or the old
// slot's root up again.
func (c *lineClock) report(t *testing.T) {
	var marks []string
	for i, l := range c.lines {
		marks = append(marks, fmt.Sprintf("%7.1fs %s", c.at[i].Seconds(), l[:min(len(l), 60)]))
	}
	t.Logf("host wall time of each step since qemu started:\n%s", strings.Join(marks, "\n"))
	t.Logf("%s", strings.Join(c.timings(), "\n"))
}

// abTrial is an upgrade whose trial is under way.
type abTrial struct {
	build, from string
	cmd, reboot time.Duration
}

// timings derives the AB-TIMING lines from the marks.
func (c *lineClock) timings() []string {
	var out []string
	var cmd, cut time.Duration
	var cur *abTrial
	for i, l := range c.lines {
		at := c.at[i]
		switch {
		case strings.HasPrefix(l, "AB-CMD initos upgrade"):
			cmd = at
		case strings.HasPrefix(l, "AB-POWERCUT"):
			cut, cur = at, nil
		case strings.HasPrefix(l, "AB-RUN upgrade exit=0 "):
			var r update.StageResult
			if json.Unmarshal([]byte(strings.SplitN(l, " ", 4)[3]), &r) != nil || r.UKI == nil {
				continue
			}
			out = append(out, fmt.Sprintf("AB-TIMING stage %q: %.1f s in the guest, %d bytes written", r.UKI.BuildID, r.Seconds, r.BytesWritten))
			cur = &abTrial{build: r.UKI.BuildID, from: r.From, cmd: cmd, reboot: at}
		case strings.HasPrefix(l, "AB-ROLLBACK"):
			cur = &abTrial{build: "rollback", from: "b", cmd: at, reboot: at}
		case strings.HasPrefix(l, "AB-RUN bless exit=0") && cur != nil:
			out = append(out, cur.line("blessed", at))
			cur = nil
		case strings.HasPrefix(l, "AB-STATUS "):
			var st update.Status
			if json.Unmarshal([]byte(strings.TrimPrefix(l, "AB-STATUS ")), &st) != nil {
				continue
			}
			if cut != 0 {
				out = append(out, fmt.Sprintf("AB-TIMING power cut during staging: back on the old slot's root %.0f s after the cut (qemu restarted, one boot)", (at-cut).Seconds()))
				cut = 0
			}
			if cur != nil && st.Active == cur.from {
				out = append(out, cur.line("back on the old slot", at))
				cur = nil
			}
		}
	}
	return out
}

func (tr *abTrial) line(end string, at time.Duration) string {
	class := abClasses[tr.build]
	if class == "" {
		class = tr.build
	}
	return fmt.Sprintf("AB-TIMING %s: %s %.0f s after the upgrade command, %.0f s after the trial's reboot", class, end, (at - tr.cmd).Seconds(), (at - tr.reboot).Seconds())
}
