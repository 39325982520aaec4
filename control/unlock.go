package control

import (
	"bytes"
	"errors"
	"fmt"
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
