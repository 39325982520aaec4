// Package progress draws progress bars on a terminal for long CLI work
// (verity trees, image pulls, KDF calibration, squashfs builds, installs).
//
// A bar draws only when its output is a terminal and it is enabled
// (`--progress=false` disables it), so scripted runs, CI logs and pipes see
// nothing. Drawing is github.com/schollz/progressbar; this package only
// decides whether to draw and gives a nil-safe handle, so callers never
// branch on "is there a bar".
package progress

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
)

// Bar is a progress bar, or nothing. A nil *Bar is valid and does nothing,
// so libraries can take one as an optional argument.
type Bar struct{ pb *progressbar.ProgressBar }

// IsTerminal reports whether w is a terminal (an *os.File for which
// TCGETS succeeds).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// New returns a bar for total units (bytes when bytes is true) labelled
// desc, drawn on w; it returns nil (no bar) when enabled is false or w is
// not a terminal. total < 0 means unknown (a spinner).
func New(w io.Writer, enabled bool, total int64, desc string, bytes bool) *Bar {
	if !enabled || !IsTerminal(w) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
		progressbar.OptionClearOnFinish(),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowCount())
	}
	return &Bar{pb: progressbar.NewOptions64(total, opts...)}
}

// Add advances the bar by n units.
func (b *Bar) Add(n int64) {
	if b != nil {
		b.pb.Add64(n)
	}
}

// Set moves the bar to n units.
func (b *Bar) Set(n int64) {
	if b != nil {
		b.pb.Set64(n)
	}
}

// Describe changes the label (e.g. the current step of an install).
func (b *Bar) Describe(desc string) {
	if b != nil {
		b.pb.Describe(desc)
	}
}

// Finish completes the bar and clears its line.
func (b *Bar) Finish() {
	if b != nil {
		b.pb.Finish()
	}
}

// Reader returns r counting what is read from it on the bar.
func (b *Bar) Reader(r io.Reader) io.Reader {
	if b == nil {
		return r
	}
	return &reader{r: r, b: b}
}

// Writer returns w counting what is written to it on the bar.
func (b *Bar) Writer(w io.Writer) io.Writer {
	if b == nil {
		return w
	}
	return io.MultiWriter(w, writeCounter{b})
}

type reader struct {
	r io.Reader
	b *Bar
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Add(int64(n))
	return n, err
}

type writeCounter struct{ b *Bar }

func (w writeCounter) Write(p []byte) (int, error) {
	w.b.Add(int64(len(p)))
	return len(p), nil
}

// Stages draws one bar per stage of a flow that reports (stage, done,
// total), as luks2's key derivation and update's staging do: a new stage
// finishes the previous bar and starts its own, labelled by Label (the
// stage's name when Label is nil or gives "").
type Stages struct {
	W       io.Writer
	Enabled bool
	Bytes   bool
	Label   func(stage string) string
	stage   string
	bar     *Bar
}

// Update reports done of total in stage.
func (s *Stages) Update(stage string, done, total int64) {
	if stage != s.stage {
		s.bar.Finish()
		label := stage
		if s.Label != nil && s.Label(stage) != "" {
			label = s.Label(stage)
		}
		s.stage, s.bar = stage, New(s.W, s.Enabled, total, label, s.Bytes)
	}
	s.bar.Set(done)
}

// Finish ends the last stage's bar.
func (s *Stages) Finish() { s.bar.Finish() }
