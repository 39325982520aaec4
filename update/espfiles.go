package update

import (
	"bytes"
	"context"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"initos/internal/atomicfile"
)

// FileResult is one file staged on one ESP.
type FileResult struct {
	Path    string `json:"path"`    // ESP-relative
	Bytes   int64  `json:"bytes"`   // its size
	Written bool   `json:"written"` // false: it was there already, byte for byte (a rerun)
}

// fallbackPath returns the removable-media loader path for the UKI's
// architecture (EFI/BOOT/BOOTX64.EFI, BOOTAA64.EFI on arm64).
func fallbackPath(uki []byte) string {
	f, err := pe.NewFile(bytes.NewReader(uki))
	if err == nil && f.Machine == pe.IMAGE_FILE_MACHINE_ARM64 {
		return "EFI/BOOT/BOOTAA64.EFI"
	}
	return FallbackPath
}

// cleanESP removes what an interrupted staging left in an ESP (temporary
// files) and modules images other than keep, to make room: this slot is
// being replaced, and nothing boots it until BootNext is set.
func cleanESP(dir, keep string) error {
	for _, sub := range []string{"EFI/Linux", "EFI/BOOT", ModulesDir} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("clean the ESP: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			stale := strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")
			if sub == ModulesDir && strings.HasPrefix(n, "modules-") && strings.HasSuffix(n, ".sqfs") && path.Join(sub, n) != keep {
				stale = true
			}
			if stale {
				if err := os.Remove(filepath.Join(dir, sub, n)); err != nil {
					return fmt.Errorf("clean the ESP: %w", err)
				}
			}
		}
	}
	return nil
}

// writeFile writes r to dir/rel through a temporary file, fsync and
// rename (atomicfile), creating the directories, checking ctx between
// reads. A ctx cancellation or an error leaves the old file in place.
func writeFile(ctx context.Context, dir, rel string, r io.Reader, count func(int64)) error {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	err := atomicfile.Write(p, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, &ctxReader{ctx: ctx, r: r, count: count})
		return err
	})
	if err != nil {
		return fmt.Errorf("write %s on the ESP: %w", rel, err)
	}
	return nil
}

// ctxReader stops a copy when ctx ends and counts what went through.
type ctxReader struct {
	ctx   context.Context
	r     io.Reader
	count func(int64)
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if c.count != nil && n > 0 {
		c.count(int64(n))
	}
	return n, err
}

// sameFile reports whether dir/rel holds exactly data.
func sameFile(dir, rel string, data []byte) bool {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	fi, err := os.Stat(p)
	if err != nil || fi.Size() != int64(len(data)) {
		return false
	}
	dropCache(p)
	b, err := os.ReadFile(p)
	return err == nil && bytes.Equal(b, data)
}

// readBack reads dir/rel from the disk (its cached pages dropped first,
// after the fsync made them clean), at most max bytes.
func readBack(dir, rel string, max int64) ([]byte, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	dropCache(p)
	return readBounded(p, max)
}

// openBack opens dir/rel for reading from the disk.
func openBack(dir, rel string) (*os.File, error) {
	p := filepath.Join(dir, filepath.FromSlash(rel))
	dropCache(p)
	return os.Open(p)
}

// joinESP returns the host path of an ESP-relative path under dir.
func joinESP(dir, rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
