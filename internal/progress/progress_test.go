package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNoBarOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, true, 100, "test", false)
	if b != nil {
		t.Fatalf("New(bytes.Buffer) = %v, want nil: a buffer is no terminal", b)
	}
	b.Add(10) // a nil bar is valid
	b.Set(50)
	b.Describe("x")
	b.Finish()
	if got, _ := io.ReadAll(b.Reader(strings.NewReader("abc"))); string(got) != "abc" {
		t.Errorf("nil Bar.Reader read %q, want abc", got)
	}
	if buf.Len() != 0 {
		t.Errorf("a disabled bar wrote %q", buf.String())
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestDrawsOnTerminal(t *testing.T) {
	m, s := openPTY(t)
	if New(s, false, 100, "test", false) != nil {
		t.Error("New(terminal, enabled=false) = a bar, want nil")
	}
	b := New(s, true, 100, "verity", false)
	if b == nil {
		t.Fatal("New(terminal, enabled=true) = nil, want a bar")
	}
	b.Add(50)
	time.Sleep(150 * time.Millisecond) // past the redraw throttle
	b.Add(50)
	b.Finish()
	m.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), "verity") {
		n, err := m.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("terminal got %q, %v, want the bar labelled verity", got, err)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) {
		t.Error("IsTerminal(pipe) = true")
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("IsTerminal(buffer) = true")
	}
}

// TestStagesOffTerminal: stages reported to a writer that is not a
// terminal draw nothing and never fail, through a stage change and Finish.
func TestStagesOffTerminal(t *testing.T) {
	var buf bytes.Buffer
	s := &Stages{W: &buf, Enabled: true, Label: func(string) string { return "" }}
	s.Update("calibrate", 0, -1)
	s.Update("derive", 5, 10)
	s.Finish()
	if buf.Len() != 0 || s.stage != "derive" {
		t.Errorf("Stages off a terminal wrote %q, stage %q; want nothing, derive", buf.String(), s.stage)
	}
}
