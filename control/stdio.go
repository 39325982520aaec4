package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// maxKey bounds a passphrase or recovery key read from stdin.
const maxKey = 4096

// unlock reads a key from stdin and hands it to the backend. Wrong keys
// are counted and rate-limited (Config.Unlock); a rate-limited attempt
// never reaches the backend; a right key is never counted.
func (r *request) unlock() error {
	if err := r.noArgs(); err != nil {
		return err
	}
	key, err := readInput(r.ctx, r.stdin, maxKey, inputTimeout)
	defer clear(key)
	if err != nil {
		return usagef("unlock: key on stdin: %v", err)
	}
	key = trimNewline(key)
	if len(key) == 0 {
		return usagef("unlock: empty key on stdin")
	}
	wait, ok := r.s.keys.take()
	if !ok {
		return &codeError{ExitRateLimited, fmt.Errorf("unlock: rate limited after %d wrong keys: next attempt in %v",
			r.s.keys.wrongKeys(), wait.Round(time.Second/10))}
	}
	r.s.unlockMu.Lock()
	err = r.s.backend.Unlock(r.ctx, key)
	r.s.unlockMu.Unlock()
	wrong := errors.Is(err, ErrWrongKey)
	r.s.keys.done(wrong)
	switch {
	case wrong:
		return &codeError{ExitWrongKey, fmt.Errorf("unlock: %w (%d wrong keys so far)", err, r.s.keys.wrongKeys())}
	case err != nil:
		return fmt.Errorf("unlock: %w", err)
	}
	r.after = r.s.markUnlocked
	if r.json {
		return r.writeJSON(struct {
			Unlocked bool `json:"unlocked"`
		}{true})
	}
	fmt.Fprintln(r.stdout, "unlock: volumes open; the boot continues")
	return nil
}

// trimNewline drops one trailing "\n" or "\r\n" (echo KEY | ssh ...).
func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

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
