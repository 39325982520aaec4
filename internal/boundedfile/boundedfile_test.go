package boundedfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parseShort(b []byte) (string, error) {
	if len(b) > 4 {
		return "", fmt.Errorf("%d bytes, at most 4", len(b))
	}
	return string(b), nil
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	ok, big := filepath.Join(dir, "ok"), filepath.Join(dir, "big")
	os.WriteFile(ok, []byte("abcd"), 0o644)
	os.WriteFile(big, []byte(strings.Repeat("x", 1<<20)), 0o644)
	for _, c := range []struct {
		path, want, err string
	}{
		{ok, "abcd", ""},
		{big, "", "conf " + big + ": 5 bytes, at most 4"},
		{filepath.Join(dir, "none"), "", "conf: open " + filepath.Join(dir, "none") + ": no such file or directory"},
		{dir, "", "conf " + dir + ": read " + dir + ": is a directory"},
	} {
		got, err := Read("conf", c.path, 4, parseShort)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("Read(%s) = %q, %v; want %q, %s", c.path, got, err, c.want, c.err)
		}
	}
}
