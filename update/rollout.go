package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Remote runs `initos` commands on a booted host (the control plane
// client runs them over SSH, pinned by known_hosts). Run returns the
// command's standard output and exit status; err is set when the host
// could not be reached or the session ended without a status (a reboot).
type Remote interface {
	Run(ctx context.Context, host string, args []string) (stdout []byte, code int, err error)
}

// RolloutOptions tune Rollout.
type RolloutOptions struct {
	From      string // the artifacts' reference, as hosts see it (a registry REF)
	RootImage string // a root image for the new slots ("" for none)
	Canary    int    // hosts upgraded first, alone; 0 means 1
	Batch     int    // hosts upgraded at once after the canaries; 0 means 1
	// TrialTimeout bounds one host's upgrade: staging, reboot, trial,
	// bless; 0 means 15 minutes. Poll is the status poll interval; 0 means 5s.
	TrialTimeout, Poll time.Duration
	Log                io.Writer // progress lines; nil discards them
}

// Host outcomes of a rollout.
const (
	HostBlessed = "blessed" // the new slot booted, passed its health gate, is the default
	HostFailed  = "failed"  // the trial failed: the host is back on its old slot
	HostError   = "error"   // staging was refused, or the host could not be reached or did not finish in time
	HostSkipped = "skipped" // not tried: the rollout stopped before
)

// HostResult is one host's upgrade.
type HostResult struct {
	Host    string  `json:"host"`
	Phase   string  `json:"phase"` // "canary" or "batch N"
	State   string  `json:"state"`
	From    string  `json:"from_slot,omitempty"`
	To      string  `json:"to_slot,omitempty"`
	BuildID string  `json:"build_id,omitempty"`
	Step    string  `json:"step,omitempty"`   // where a failed trial stopped
	Reason  string  `json:"reason,omitempty"` // why it failed
	Seconds float64 `json:"seconds"`
}

// ErrRolloutStopped reports a rollout stopped by a failed host.
var ErrRolloutStopped = errors.New("rollout stopped")

// Rollout upgrades hosts from o.From: first o.Canary hosts, then batches
// of o.Batch, each host staged with `initos upgrade --json` (which
// reboots it into the trial), then polled with `initos slot status
// --json` until a new boot reports the trial blessed or failed. It stops
// at the first batch with a host that did not bless; the hosts after it
// are skipped. Results come in the order of hosts.
func Rollout(ctx context.Context, r Remote, hosts []string, o RolloutOptions) ([]HostResult, error) {
	o = o.withDefaults()
	res := make([]HostResult, len(hosts))
	for i, h := range hosts {
		res[i] = HostResult{Host: h, State: HostSkipped}
	}
	for start, n := 0, 0; start < len(hosts); n++ {
		size, phase := o.Batch, fmt.Sprintf("batch %d", n)
		if n == 0 {
			size, phase = o.Canary, "canary"
		}
		end := min(start+size, len(hosts))
		var wg sync.WaitGroup
		for i := start; i < end; i++ {
			wg.Go(func() { res[i] = upgradeHost(ctx, r, hosts[i], phase, o) })
		}
		wg.Wait()
		for i := start; i < end; i++ {
			if res[i].State != HostBlessed {
				return res, fmt.Errorf("%w at %s: %s %s (%s); %d host(s) not tried", ErrRolloutStopped, phase, res[i].Host, res[i].State, res[i].Reason, len(hosts)-end)
			}
		}
		start = end
	}
	return res, nil
}

func (o RolloutOptions) withDefaults() RolloutOptions {
	o.Canary, o.Batch = max(o.Canary, 1), max(o.Batch, 1)
	if o.TrialTimeout <= 0 {
		o.TrialTimeout = 15 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// upgradeHost stages one host, lets it reboot and waits for the verdict.
func upgradeHost(ctx context.Context, r Remote, host, phase string, o RolloutOptions) (res HostResult) {
	start := time.Now()
	res = HostResult{Host: host, Phase: phase, State: HostError}
	defer func() { res.Seconds = time.Since(start).Seconds() }() // of the result returned
	ctx, cancel := context.WithTimeout(ctx, o.TrialTimeout)
	defer cancel()
	before, err := remoteStatus(ctx, r, host)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	staged, err := remoteStage(ctx, r, host, o)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	res.From, res.To, res.BuildID = staged.From, staged.Slot, staged.UKI.BuildID
	fmt.Fprintf(o.Log, "%s: staged slot %s (build %q), rebooting into its trial\n", host, staged.Slot, staged.UKI.BuildID)
	after, err := waitVerdict(ctx, r, host, before.BootID, o.Poll)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	return verdict(res, after)
}

// verdict turns the status of the new boot into the host's result.
func verdict(res HostResult, st *Status) HostResult {
	t := st.Trial
	switch {
	case st.Outcome == HostBlessed && st.Active == res.To && t != nil && t.Slot == res.To:
		res.State = HostBlessed
	case t == nil || t.Slot != res.To:
		res.State, res.Reason = HostError, fmt.Sprintf("the host rebooted without a record of the trial of slot %s (booted slot %s)", res.To, st.Active)
	default:
		res.State, res.Step, res.Reason = HostFailed, t.Step, t.Reason
	}
	return res
}

// remoteStage runs `initos upgrade --json` on host. The command reboots
// the host once it printed its result: a session that ends without an
// exit status after a complete result is that reboot.
func remoteStage(ctx context.Context, r Remote, host string, o RolloutOptions) (*StageResult, error) {
	args := []string{"initos", "upgrade", "--json", "--progress=false", "--from", o.From}
	if o.RootImage != "" {
		args = append(args, "--root-image", o.RootImage)
	}
	out, code, err := r.Run(ctx, host, args)
	var st StageResult // the first JSON document: a reboot message may follow
	if jerr := json.NewDecoder(bytes.NewReader(out)).Decode(&st); jerr != nil || st.BootNext == "" {
		if err == nil {
			err = fmt.Errorf("exit status %d", code)
		}
		return nil, fmt.Errorf("initos upgrade: %w: %s", err, firstLine(out))
	}
	if err == nil && code != 0 {
		return nil, fmt.Errorf("initos upgrade: exit status %d after staging", code)
	}
	return &st, nil
}

// remoteStatus runs `initos slot status --json` on host.
func remoteStatus(ctx context.Context, r Remote, host string) (*Status, error) {
	out, code, err := r.Run(ctx, host, []string{"initos", "slot", "status", "--json"})
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("initos slot status: exit status %d: %s", code, firstLine(out))
	}
	var st Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("initos slot status: %w", err)
	}
	return &st, nil
}

// waitVerdict polls the host until a boot other than before reports the
// trial ended (blessed, or failed and back on the old slot).
func waitVerdict(ctx context.Context, r Remote, host, before string, poll time.Duration) (*Status, error) {
	var last error
	for {
		select {
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("no verdict before the timeout (last: %v)", last)
			}
			return nil, errors.New("no verdict before the timeout: the trial is still running or the host is down")
		case <-time.After(poll):
		}
		st, err := remoteStatus(ctx, r, host)
		if err != nil {
			last = err
			continue
		}
		if st.BootID != before && (st.Outcome == HostBlessed || strings.HasPrefix(st.Outcome, HostFailed)) {
			return st, nil
		}
	}
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	if len(b) > 200 {
		return string(b[:200])
	}
	return string(b)
}
