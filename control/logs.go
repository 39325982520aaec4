package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// logs streams the kernel log ring; -f follows it until the client goes.
func (r *request) logs() error {
	follow := false
	for _, a := range r.args {
		if a != "-f" && a != "--follow" {
			return usagef("logs: unexpected argument %q (usage: logs [-f] [--json])", a)
		}
		follow = true
	}
	w := &syncWriter{w: r.stdout}
	var out io.Writer = w
	if r.json {
		out = &jsonLines{w: w}
	}
	err := r.s.backend.Logs(r.ctx, out, follow)
	if err != nil && r.ctx.Err() == nil {
		return fmt.Errorf("logs: %w", err)
	}
	return nil
}

// syncWriter serializes writes from a backend that writes concurrently.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// jsonLines turns each text line written to it into a JSON string line
// ({"line":"..."}), for logs --json.
type jsonLines struct {
	w       io.Writer
	partial []byte
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		b, _ := json.Marshal(struct {
			Line string `json:"line"`
		}{string(j.partial[:i])})
		if _, err := j.w.Write(append(b, '\n')); err != nil {
			return 0, err
		}
		j.partial = j.partial[i+1:]
	}
}
