package initramfs

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"

	"initos/cpio"
	"initos/internal/atomicfile"
)

// Compression selects how WriteTo compresses the archive.
type Compression int

// Compressions the Debian kernel unpacks (CONFIG_RD_GZIP, CONFIG_RD_ZSTD).
const (
	None     Compression = iota // plain newc
	Gzip                        // gzip, default level
	Zstd                        // zstd, default level, single-threaded (deterministic)
	ZstdBest                    // zstd, best compression level (smaller, slower to write, as fast to unpack)
)

var compressionNames = []string{None: "none", Gzip: "gzip", Zstd: "zstd", ZstdBest: "zstd-best"}

// String returns "none", "gzip", "zstd" or "zstd-best".
func (c Compression) String() string {
	if c < 0 || int(c) >= len(compressionNames) {
		return "Compression(" + strconv.Itoa(int(c)) + ")"
	}
	return compressionNames[c]
}

// ParseCompression parses the names String returns.
func ParseCompression(s string) (Compression, error) {
	if i := slices.Index(compressionNames, s); i >= 0 {
		return Compression(i), nil
	}
	return 0, fmt.Errorf("parse compression %q: want none, gzip, zstd or zstd-best", s)
}

// mtime returns the entries' modification time in seconds.
func (a *Archive) mtime() (uint32, error) {
	t := a.ModTime
	if t.IsZero() {
		s := os.Getenv("SOURCE_DATE_EPOCH")
		if s == "" {
			return 0, nil
		}
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
		}
		t = time.Unix(sec, 0)
	}
	if t.Unix() < 0 || t.Unix() > 1<<32-1 {
		return 0, fmt.Errorf("modification time %v: outside newc's 32-bit range", t)
	}
	return uint32(t.Unix()), nil
}

// WriteTo writes the archive, entries sorted by path (parents first),
// compressed with c. It returns the first error of an Add method, if any,
// before writing anything.
func (a *Archive) WriteTo(w io.Writer, c Compression) error {
	if a.err != nil {
		return fmt.Errorf("write initramfs: %w", a.err)
	}
	mtime, err := a.mtime()
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	zw, err := compressor(w, c)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	cw := cpio.NewWriter(zw)
	for i, name := range slices.Sorted(maps.Keys(a.entries)) {
		if err := writeEntry(cw, name, a.entries[name], uint32(i+1), mtime); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
	}
	if err := cw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write initramfs: %s: %w", c, err)
	}
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// compressor wraps w in the compression c.
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None:
		return nopCloser{w}, nil
	case Gzip:
		return gzip.NewWriter(w), nil
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	case ZstdBest:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	}
	return nil, fmt.Errorf("unknown compression %v", c)
}

// writeEntry writes one entry; host files are streamed from disk.
func writeEntry(cw *cpio.Writer, name string, e *entry, ino, mtime uint32) error {
	h := &cpio.Header{Name: name, Ino: ino, Mode: e.mode, NLink: 1, MTime: mtime,
		RDevMajor: e.major, RDevMinor: e.minor}
	switch e.mode & cpio.TypeMask {
	case cpio.TypeDir:
		h.NLink = 2
	case cpio.TypeSymlink:
		h.Linkname = string(e.data)
		return cw.WriteHeader(h)
	}
	if e.host != "" {
		return writeHostFile(cw, h, e.host)
	}
	h.Size = uint32(len(e.data))
	if err := cw.WriteHeader(h); err != nil {
		return err
	}
	_, err := cw.Write(e.data)
	return err
}

// writeHostFile writes h with the contents of the host file p.
func writeHostFile(cw *cpio.Writer, h *cpio.Header, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("add host file %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("add host file %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxFileSize {
		return fmt.Errorf("add host file %s: changed since added: now %v, %d bytes", p, fi.Mode(), fi.Size())
	}
	h.Size = uint32(fi.Size())
	if err := cw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(cw, f)
	if err != nil {
		return fmt.Errorf("add host file %s: %w", p, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("add host file %s: read %d bytes, size was %d", p, n, fi.Size())
	}
	return nil
}

// WriteFile writes the archive to the file name atomically (package
// atomicfile): a failure never leaves a partial initramfs under name.
func (a *Archive) WriteFile(name string, c Compression) error {
	return atomicfile.Write(name, 0o644, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := a.WriteTo(bw, c); err != nil {
			return fmt.Errorf("write initramfs: %w", err)
		}
		return bw.Flush()
	})
}
