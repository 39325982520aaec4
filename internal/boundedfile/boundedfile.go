// Package boundedfile reads small config files whose size an attacker or
// a typo may inflate: never more than a bound, so a huge or endless file
// (a device, a FIFO) gives an error, not an out-of-memory.
package boundedfile

import (
	"fmt"
	"io"
	"os"
)

// Read reads at most max+1 bytes of path and hands them to parse, which
// checks the size. Errors name what and the file: "what: open …" when
// it cannot be opened, "what PATH: …" when it cannot be read or parsed.
func Read[T any](what, path string, max int64, parse func([]byte) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", what, path, err)
	}
	v, err := parse(b)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return v, nil
}
