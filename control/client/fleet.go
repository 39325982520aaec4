package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Result is the outcome of one verb on one host.
type Result struct {
	Host    string          `json:"host"`
	Exit    int             `json:"exit"`             // the verb's exit status; -1 when none
	Error   string          `json:"error,omitempty"`  // reaching, authenticating or running failed
	Answer  json.RawMessage `json:"answer,omitempty"` // stdout, when it is JSON
	Stdout  string          `json:"stdout,omitempty"` // stdout, when it is not JSON
	Stderr  string          `json:"stderr,omitempty"`
	Seconds float64         `json:"seconds"` // wall time, connection included
}

// OK reports whether the verb ran and exited 0.
func (r Result) OK() bool { return r.Error == "" && r.Exit == 0 }

// RunAll runs command on every host, at most parallel at once (default
// 16), each with its own copy of stdin, and returns the results in the
// order of hosts.
func (o Options) RunAll(ctx context.Context, hosts []string, command string, stdin []byte, parallel int) []Result {
	if parallel <= 0 {
		parallel = 16
	}
	res := make([]Result, len(hosts))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i] = o.runOne(ctx, h, command, stdin)
		}()
	}
	wg.Wait()
	return res
}

func (o Options) runOne(ctx context.Context, host, command string, stdin []byte) Result {
	start := time.Now()
	var out, errb bytes.Buffer
	code, err := o.Run(ctx, host, command, bytes.NewReader(stdin), &out, &errb)
	r := Result{Host: host, Exit: code, Stderr: errb.String(), Seconds: time.Since(start).Seconds()}
	if err != nil {
		r.Error = err.Error()
	}
	if b := bytes.TrimSpace(out.Bytes()); len(b) > 0 && json.Valid(b) {
		r.Answer = json.RawMessage(b)
	} else {
		r.Stdout = out.String()
	}
	return r
}

// ReadHosts reads a hosts file: one host (or host:port) a line; blank
// lines and #-comments are skipped.
func ReadHosts(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ctl: hosts file: %w", err)
	}
	defer f.Close()
	var hosts []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1:
			hosts = append(hosts, fields[0])
		default:
			return nil, fmt.Errorf("ctl: hosts file %s:%d: %q: want one host a line", path, n, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ctl: hosts file: %w", err)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("ctl: hosts file %s: no host", path)
	}
	return hosts, nil
}
