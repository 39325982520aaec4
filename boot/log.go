package boot

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Logger writes the boot log: each line, like the kernel's own ("[
// 1.234567] initos: step: message", the time since the kernel started),
// to the console, and to the kernel log (/dev/kmsg, which adds its own
// timestamp); it keeps every line for the control plane. A line the
// kernel echoes to the console itself (its level is below the console
// log level) is not written to the console twice.
type Logger struct {
	mu      sync.Mutex
	console io.Writer // the console (init's stdout): nil discards
	kmsg    io.Writer // /dev/kmsg: nil discards
	echo    int       // the kernel echoes kmsg records of a level below this to the console
	clock   func() time.Duration
	lines   []string
}

// maxLogLines bounds the lines kept in memory.
const maxLogLines = 4096

// NewLogger returns a Logger writing to console and kmsg (either may be
// nil); clock returns the time since boot (nil: CLOCK_BOOTTIME).
func NewLogger(console, kmsg io.Writer, clock func() time.Duration) *Logger {
	if clock == nil {
		clock = sinceBoot
	}
	return &Logger{console: console, kmsg: kmsg, clock: clock}
}

// Printf logs one message at level info (6).
func (l *Logger) Printf(format string, args ...any) {
	l.write(6, fmt.Sprintf(format, args...))
}

// Errorf logs one message at level err (3) on the kernel log.
func (l *Logger) Errorf(format string, args ...any) {
	l.write(3, fmt.Sprintf(format, args...))
}

func (l *Logger) write(level int, msg string) {
	if l == nil {
		return
	}
	msg = strings.TrimRight(msg, "\n")
	d := l.clock()
	sec, usec := int64(d/time.Second), int64(d%time.Second/time.Microsecond)
	line := fmt.Sprintf("[%5d.%06d] initos: %s", sec, usec, msg)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < maxLogLines {
		l.lines = append(l.lines, line)
	}
	if l.console != nil && (l.kmsg == nil || level >= l.echo) {
		io.WriteString(l.console, line+"\n")
	}
	if l.kmsg != nil {
		// One write is one record; the kernel prefixes its timestamp.
		io.WriteString(l.kmsg, fmt.Sprintf("<%d>initos: %s\n", level, msg))
	}
}

// Lines returns a copy of the lines logged so far.
func (l *Logger) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
