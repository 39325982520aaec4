package boot

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock advances by a millisecond on each reading.
func fakeClock() func() time.Duration {
	var now time.Duration
	return func() time.Duration { now += time.Millisecond; return now }
}

func TestFlow(t *testing.T) {
	var console bytes.Buffer
	log := NewLogger(&console, nil, fakeClock())
	var ran []string
	fail := errors.New("disk on fire")
	broken := true
	f := &Flow{Log: log, clock: fakeClock()}
	var step func(name string) Step
	step = func(name string) Step {
		return Step{name, func(ctx context.Context) error {
			ran = append(ran, name)
			if name == "b" && broken {
				return fail
			}
			if name == "a" && len(f.Steps) == 2 {
				f.Steps = append(f.Steps, step("c")) // a step may add the next ones
			}
			return nil
		}}
	}
	f.Steps = []Step{step("a"), step("b")}
	err := f.Run(context.Background())
	var se *StepError
	if !errors.As(err, &se) || se.Step != "b" || !errors.Is(err, fail) || err.Error() != "b: disk on fire" {
		t.Fatalf("Run() = %v, want a StepError of step b wrapping the failure", err)
	}
	if f.Next() != "b" || !cmp.Equal(f.Done(), []string{"a"}) {
		t.Errorf("after the failure: Next() = %q, Done() = %q, want b, [a]", f.Next(), f.Done())
	}
	broken = false
	if err := f.Run(context.Background()); err != nil {
		t.Fatalf("Run() again = %v, want success", err)
	}
	if want := []string{"a", "b", "b", "c"}; !cmp.Equal(ran, want) {
		t.Errorf("steps ran %q, want %q (the retry resumes at the failed step)", ran, want)
	}
	if f.Next() != "" {
		t.Errorf("Next() after the last step = %q, want empty", f.Next())
	}
	out := console.String()
	for _, want := range []string{"a: done in 1ms", "b: stopped after 1ms", "c: done in 1ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("console = %q, want %q", out, want)
		}
	}
}

func TestFlowCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &Flow{Log: NewLogger(nil, nil, nil), Steps: []Step{{"a", func(context.Context) error { return nil }}}}
	if err := f.Run(ctx); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "a: ") {
		t.Errorf("Run(canceled) = %v, want step a canceled", err)
	}
}

func TestLogger(t *testing.T) {
	var console, kmsg bytes.Buffer
	clock := func() time.Duration { return 12*time.Second + 345678*time.Microsecond }
	l := NewLogger(&console, &kmsg, clock)
	l.Printf("esp: found %s", "/dev/vda1")
	l.Errorf("unlock: %v\n", errors.New("no TPM"))
	wantConsole := "[   12.345678] initos: esp: found /dev/vda1\n[   12.345678] initos: unlock: no TPM\n"
	if console.String() != wantConsole {
		t.Errorf("console = %q, want %q", console.String(), wantConsole)
	}
	if want := "<6>initos: esp: found /dev/vda1\n<3>initos: unlock: no TPM\n"; kmsg.String() != want {
		t.Errorf("kmsg = %q, want %q (one record per write, with its level)", kmsg.String(), want)
	}
	if got := l.Lines(); len(got) != 2 || !strings.HasSuffix(got[1], "unlock: no TPM") {
		t.Errorf("Lines() = %q", got)
	}
	// With quiet (console level 4) the kernel echoes errors itself.
	console.Reset()
	l.echo = 4
	l.Errorf("echoed by the kernel")
	l.Printf("not echoed")
	if got := console.String(); strings.Contains(got, "echoed by the kernel") || !strings.Contains(got, "not echoed") {
		t.Errorf("console = %q, want only the line the kernel does not echo", got)
	}
	var nilLog *Logger
	nilLog.Printf("ignored") // a nil Logger discards
}
