package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// emitter normalizes entries and writes them to the layer tar.
type emitter struct {
	ctx    context.Context
	tw     *tar.Writer
	epoch  *time.Time
	report func(read, total int64)
	buf    []byte

	newest         time.Time
	entries, bytes int64
}

func newEmitter(ctx context.Context, w io.Writer, opt ImportOptions) *emitter {
	return &emitter{ctx: ctx, tw: tar.NewWriter(w), epoch: opt.Epoch, report: opt.Progress, buf: make([]byte, 1<<20)}
}

// progress reports read of total source bytes (-1: unknown).
func (e *emitter) progress(read, total int64) {
	if e.report != nil {
		e.report(read, total)
	}
}

// emit writes hdr, normalized, and the content of a regular file from r.
func (e *emitter) emit(hdr *tar.Header, r io.Reader) error {
	if e.entries%256 == 0 {
		if err := e.ctx.Err(); err != nil {
			return err
		}
	}
	keep, err := normalizeHeader(hdr, e.epoch)
	if err != nil || !keep {
		return err
	}
	if hdr.ModTime.After(e.newest) {
		e.newest = hdr.ModTime
	}
	if err := e.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	e.entries++
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	for left := hdr.Size; left > 0; {
		if err := e.ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, e.buf[:min(left, int64(len(e.buf)))])
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return fmt.Errorf("entry %q: %d bytes short (did the file change while importing?)", hdr.Name, left-int64(n))
		}
		if err != nil {
			return fmt.Errorf("entry %q: read: %w", hdr.Name, err)
		}
		if _, err := e.tw.Write(e.buf[:n]); err != nil {
			return err
		}
		left -= int64(n)
	}
	e.bytes += hdr.Size
	return nil
}

// close writes the end of the tar.
func (e *emitter) close() error { return e.tw.Close() }

// normalizeHeader makes an entry reproducible and safe to unpack (see
// Import). It returns false for entries that are dropped: the root, and
// global PAX headers.
func normalizeHeader(h *tar.Header, epoch *time.Time) (bool, error) {
	name, err := importName(h.Name)
	if err != nil || name == "" {
		return false, err
	}
	if strings.HasPrefix(path.Base(name), whiteoutPrefix) {
		return false, fmt.Errorf("entry %q: %w: .wh. names are whiteouts in image layers", h.Name, ErrUnsafePath)
	}
	out := tar.Header{Name: name, Mode: h.Mode & 0o7777, Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime.UTC().Truncate(time.Second)}
	if h.ModTime.IsZero() {
		out.ModTime = time.Unix(0, 0).UTC()
	}
	if epoch != nil && out.ModTime.After(*epoch) {
		out.ModTime = *epoch
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		out.Typeflag, out.Size = tar.TypeReg, h.Size
	case tar.TypeDir:
		out.Typeflag, out.Name = tar.TypeDir, name+"/"
	case tar.TypeSymlink:
		out.Typeflag, out.Linkname = tar.TypeSymlink, h.Linkname
	case tar.TypeLink:
		if out.Linkname, err = importName(h.Linkname); err != nil || out.Linkname == "" {
			return false, fmt.Errorf("entry %q: hard link to %q: %w", h.Name, h.Linkname, cmpErr(err, ErrUnsafePath))
		}
		out.Typeflag = tar.TypeLink
	case tar.TypeChar, tar.TypeBlock:
		out.Typeflag, out.Devmajor, out.Devminor = h.Typeflag, h.Devmajor, h.Devminor
	case tar.TypeFifo:
		out.Typeflag = tar.TypeFifo
	case tar.TypeXGlobalHeader:
		return false, nil
	default:
		return false, fmt.Errorf("entry %q: unsupported tar type %q", h.Name, h.Typeflag)
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if out.PAXRecords == nil {
				out.PAXRecords = map[string]string{}
			}
			out.PAXRecords[k] = v
		}
	}
	*h = out
	return true, nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// importName cleans an entry name of a root filesystem tar: leading "/"
// and "./" go (as GNU tar strips them), ".." is refused.
func importName(n string) (string, error) {
	return CleanPath(strings.TrimLeft(n, "/"))
}

// readTarSource feeds the entries of a tar stream (compressed or not) to e.
func readTarSource(r io.Reader, total int64, e *emitter) error {
	cr := &progressReader{r: r, total: total, report: e.progress}
	br := bufio.NewReaderSize(cr, 1<<20)
	zr, closeZ, err := decompressAny(br)
	if err != nil {
		return err
	}
	defer closeZ()
	tr := tar.NewReader(zr)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: entry %d: %w", n, err)
		}
		if err := e.emit(hdr, tr); err != nil {
			return err
		}
	}
}

// decompressAny sniffs gzip, zstd, xz and bzip2 (what mmdebstrap and
// tar -a write) and returns the decompressed stream.
func decompressAny(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return zr, func() {}, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), func() {}, nil
	}
	return br, func() {}, nil
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r      io.Reader
	read   int64
	total  int64
	report func(read, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	p.report(p.read, p.total)
	return n, err
}
