package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"initos/update/trial"
)

// fakeFleet is a Remote over simulated hosts: `initos upgrade` stages the
// other slot and "reboots" (the session ends without a status); the next
// boot's status shows the trial blessed, or failed when the host is in
// broken.
type fakeFleet struct {
	mu     sync.Mutex
	hosts  map[string]*fakeMachine
	broken map[string]bool
	calls  []string
}

type fakeMachine struct {
	boot   int
	active string
	rec    *trial.Record
	staged bool
}

func newFleet(hosts ...string) *fakeFleet {
	f := &fakeFleet{hosts: map[string]*fakeMachine{}, broken: map[string]bool{}}
	for _, h := range hosts {
		f.hosts[h] = &fakeMachine{boot: 1, active: "a"}
	}
	return f
}

func (f *fakeFleet) Run(ctx context.Context, host string, args []string) ([]byte, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.hosts[host]
	if !ok {
		return nil, -1, fmt.Errorf("dial %s: connection refused", host)
	}
	cmd := strings.Join(args, " ")
	f.calls = append(f.calls, host+": "+cmd)
	switch {
	case strings.HasPrefix(cmd, "initos slot status"):
		if m.staged { // the reboot into the trial, and its end
			m.staged, m.boot = false, m.boot+1
			m.rec.State = trial.Blessed
			if f.broken[host] {
				m.rec.State, m.rec.Step, m.rec.Reason = trial.Failed, "initrd: root", "root subvolume missing"
			} else {
				m.active = m.rec.Slot
			}
		}
		st := Status{Active: m.active, BootID: fmt.Sprint(m.boot), Trial: m.rec, Outcome: outcome(m.rec, m.active)}
		b, _ := json.Marshal(st)
		return b, 0, nil
	case strings.HasPrefix(cmd, "initos upgrade --json --progress=false --from reg/boot:v2"):
		m.rec = &trial.Record{Format: 1, Slot: Other(m.active), From: m.active, State: trial.Staged, BuildID: "v2"}
		m.staged = true
		b, _ := json.Marshal(StageResult{Slot: m.rec.Slot, From: m.active, UKI: &UKI{BuildID: "v2"}, BootNext: "Boot0001"})
		return b, -1, errors.New("the host closed the session without an exit status")
	}
	return []byte("unknown command"), 2, nil
}

func TestRollout(t *testing.T) {
	o := RolloutOptions{From: "reg/boot:v2", Canary: 1, Batch: 2, Poll: time.Millisecond}
	for _, c := range []struct {
		name   string
		broken []string
		states []string
		stop   bool
	}{
		{"all good", nil, []string{"blessed", "blessed", "blessed", "blessed"}, false},
		{"canary fails", []string{"h1"}, []string{"failed", "skipped", "skipped", "skipped"}, true},
		{"second batch fails", []string{"h3"}, []string{"blessed", "blessed", "failed", "skipped"}, true},
		{"unreachable", []string{"-h2"}, []string{"blessed", "error", "blessed", "skipped"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFleet("h1", "h2", "h3", "h4")
			for _, b := range c.broken {
				if h, ok := strings.CutPrefix(b, "-"); ok {
					delete(f.hosts, h)
				} else {
					f.broken[b] = true
				}
			}
			res, err := Rollout(context.Background(), f, []string{"h1", "h2", "h3", "h4"}, o)
			if (err != nil) != c.stop || (err != nil && !errors.Is(err, ErrRolloutStopped)) {
				t.Errorf("Rollout error = %v, want stopped %v", err, c.stop)
			}
			for i, r := range res {
				if r.State != c.states[i] {
					t.Errorf("%s = %s (%s), want %s", r.Host, r.State, r.Reason, c.states[i])
				}
				if r.State == HostFailed && (r.Reason != "root subvolume missing" || r.Step != "initrd: root" || r.To != "b") {
					t.Errorf("%s failed trial = %+v, want the reason from its record", r.Host, r)
				}
				if tried := r.State != HostSkipped; tried != (r.Seconds > 0) {
					t.Errorf("%s (%s) took %gs, want a time exactly for the hosts tried", r.Host, r.State, r.Seconds)
				}
			}
			for _, call := range f.calls {
				if strings.HasPrefix(call, "h4: initos upgrade") && c.stop {
					t.Errorf("the rollout upgraded h4 after it stopped")
				}
			}
		})
	}
}

// TestRolloutTimeout: a host that never reports a verdict is an error.
func TestRolloutTimeout(t *testing.T) {
	f := newFleet("h1")
	res, err := Rollout(context.Background(), stuck{f}, []string{"h1"}, RolloutOptions{From: "reg/boot:v2", TrialTimeout: 50 * time.Millisecond, Poll: time.Millisecond})
	if err == nil || res[0].State != HostError || !strings.Contains(res[0].Reason, "no verdict before the timeout") {
		t.Errorf("Rollout of a stuck host = %+v, %v", res, err)
	}
}

// stuck never comes back from its reboot.
type stuck struct{ f *fakeFleet }

func (s stuck) Run(ctx context.Context, host string, args []string) ([]byte, int, error) {
	if s.f.hosts[host].staged {
		return nil, -1, errors.New("connection refused")
	}
	return s.f.Run(ctx, host, args)
}
