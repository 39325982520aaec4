package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"initos/cpio"
)

// Reader reads the entries of an initramfs image as the kernel unpacks
// it: a sequence of segments, each a plain newc archive or a compressed
// stream of newc archives, separated by NUL padding. Compression is
// detected from each segment's magic number: gzip and zstd are supported;
// xz, lzma, bzip2, lzo and lz4 are reported as unsupported. A zstd
// decoder reads ahead, so a zstd segment must be the last one (as it is in
// initramfs images that put an uncompressed microcode archive first).
type Reader struct {
	top   *bufio.Reader // the image
	seg   *bufio.Reader // the current segment's (decompressed) stream
	close func()        // releases the current decompressor
	last  bool          // the current segment must end the image
	cr    *cpio.Reader
	segs  []Compression
	err   error
}

// NewReader returns a Reader of the image r.
func NewReader(r io.Reader) *Reader {
	return &Reader{top: bufio.NewReaderSize(r, 64<<10)}
}

// Segments returns the compression of each segment seen so far.
func (r *Reader) Segments() []Compression { return r.segs }

// Next returns the header of the next entry, io.EOF at the end of the image.
func (r *Reader) Next() (*cpio.Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	for {
		if r.cr != nil {
			h, err := r.cr.Next()
			if err != io.EOF {
				if err != nil {
					r.err = fmt.Errorf("read initramfs segment %d (%s): %w", len(r.segs), r.segs[len(r.segs)-1], err)
				}
				return h, r.err
			}
			r.cr = nil
		}
		if err := r.nextArchive(); err != nil {
			r.err = err
			return nil, err
		}
	}
}

// Read reads data of the current entry.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cr == nil {
		return 0, io.EOF
	}
	return r.cr.Read(p)
}

// nextArchive positions r at the next newc archive: the next one inside
// the current decompressed segment, or the next segment of the image.
func (r *Reader) nextArchive() error {
	if r.seg != nil {
		ok, err := atArchive(r.seg)
		if err != nil {
			return fmt.Errorf("read initramfs segment %d (%s): %w", len(r.segs), r.segs[len(r.segs)-1], err)
		}
		if ok {
			r.cr = cpio.NewReader(r.seg)
			return nil
		}
		r.endSegment()
		if r.last {
			return io.EOF
		}
	}
	ok, err := skipZeros(r.top)
	if err != nil {
		return fmt.Errorf("read initramfs: %w", err)
	}
	if !ok {
		return io.EOF
	}
	return r.openSegment()
}

func (r *Reader) endSegment() {
	if r.close != nil {
		r.close()
		r.close = nil
	}
	r.seg = nil
}

// openSegment starts the segment at the current position of the image.
func (r *Reader) openSegment() error {
	magic, _ := r.top.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte("0707")):
		r.segs = append(r.segs, None)
		r.cr = cpio.NewReader(r.top)
		return nil
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(r.top)
		if err != nil {
			return fmt.Errorf("read initramfs segment %d: gzip: %w", len(r.segs)+1, err)
		}
		zr.Multistream(false) // the next member is the next segment
		r.segs = append(r.segs, Gzip)
		r.seg, r.close = bufio.NewReaderSize(zr, 64<<10), func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(r.top, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("read initramfs segment %d: zstd: %w", len(r.segs)+1, err)
		}
		r.segs = append(r.segs, Zstd)
		r.seg, r.close, r.last = bufio.NewReaderSize(zr, 64<<10), zr.Close, true
	default:
		return fmt.Errorf("read initramfs segment %d: %w", len(r.segs)+1, unknownMagic(magic))
	}
	return r.nextArchive()
}

// skipZeros discards NUL padding; false at the end of the stream.
func skipZeros(br *bufio.Reader) (bool, error) {
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if c != 0 {
			return true, br.UnreadByte()
		}
	}
}

// atArchive skips NUL padding in a decompressed stream and reports whether
// another newc archive follows; anything else there is an error.
func atArchive(br *bufio.Reader) (bool, error) {
	ok, err := skipZeros(br)
	if !ok || err != nil {
		return false, err
	}
	magic, _ := br.Peek(6)
	if !bytes.HasPrefix(magic, []byte("0707")) {
		return false, fmt.Errorf("%w after an archive's trailer", unknownMagic(magic))
	}
	return true, nil
}

// ErrUnsupported is matched by errors about compressions Reader cannot read.
var ErrUnsupported = errors.New("unsupported initramfs compression")

func unknownMagic(magic []byte) error {
	for _, k := range []struct {
		name  string
		magic []byte
	}{
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}}, {"lzma", []byte{0x5d, 0, 0}},
		{"bzip2", []byte("BZh")}, {"lzo", []byte{0x89, 'L', 'Z', 'O'}}, {"lz4", []byte{0x02, 0x21, 0x4c, 0x18}},
	} {
		if bytes.HasPrefix(magic, k.magic) {
			return fmt.Errorf("%w: %s", ErrUnsupported, k.name)
		}
	}
	return fmt.Errorf("%w: unknown data starting %q", cpio.ErrFormat, magic)
}
