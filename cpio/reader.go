package cpio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrFormat is matched (errors.Is) by every error about malformed input.
var ErrFormat = errors.New("malformed cpio archive")

// Reader reads a newc archive entry by entry.
type Reader struct {
	r      io.Reader
	off    int64 // bytes consumed from r
	name   string
	remain int64 // unread data of the current entry
	pad    int64
	crc    bool   // "070702": verify the checksum
	want   uint32 // expected checksum
	sum    uint32
	err    error
}

// NewReader returns a Reader reading from r. It reads exactly the bytes
// of the archive up to and including the trailer's padding, so a caller
// can continue reading r after io.EOF (concatenated archives).
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Offset returns the number of bytes consumed from the underlying reader.
func (r *Reader) Offset() int64 { return r.off }

func (r *Reader) fail(format string, args ...any) error {
	r.err = fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
	return r.err
}

// readFull reads len(b) bytes; running out is a truncation error naming what.
func (r *Reader) readFull(b []byte, what string) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return r.fail("truncated at offset %d: %s", r.off, what)
	case err != nil:
		r.err = fmt.Errorf("read cpio %s: %w", what, err)
		return r.err
	}
	return nil
}

// Next skips the rest of the current entry and returns the next header.
// It returns io.EOF after the trailer.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.skip(); err != nil {
		return nil, err
	}
	start := r.off
	var buf [HeaderSize]byte
	n, err := io.ReadFull(r.r, buf[:])
	r.off += int64(n)
	switch {
	case err == io.EOF:
		return nil, r.fail("archive ends at offset %d without %s", r.off, Trailer)
	case err == io.ErrUnexpectedEOF:
		return nil, r.fail("truncated at offset %d: header of entry at offset %d", r.off, start)
	case err != nil:
		r.err = fmt.Errorf("read cpio header at offset %d: %w", start, err)
		return nil, r.err
	}
	h, err := r.parseHeader(buf[:], start)
	if err != nil {
		return nil, err
	}
	if h.Name == Trailer {
		r.err = io.EOF
		return nil, io.EOF
	}
	return h, nil
}

// parseHeader decodes the header in buf and reads the name and, for a
// symlink, the target.
func (r *Reader) parseHeader(buf []byte, start int64) (*Header, error) {
	magic := string(buf[:6])
	if magic != Magic && magic != MagicCRC {
		return nil, r.fail("entry at offset %d: bad magic %q (want %q newc; odc and binary cpio are not supported)", start, buf[:6], Magic)
	}
	var raw rawHeader
	binary.Decode(buf, binary.BigEndian, &raw)
	h := new(Header)
	nameSize, err := raw.decode(h)
	if err != nil {
		return nil, r.fail("entry at offset %d: %v", start, err)
	}
	if nameSize < 2 || nameSize > MaxNameSize {
		return nil, r.fail("entry at offset %d: c_namesize %d out of range [2, %d]", start, nameSize, MaxNameSize)
	}
	name := make([]byte, int64(nameSize)+pad(HeaderSize+int64(nameSize)))
	if err := r.readFull(name, fmt.Sprintf("name of entry at offset %d", start)); err != nil {
		return nil, err
	}
	name = name[:nameSize]
	if i := bytes.IndexByte(name, 0); i != len(name)-1 {
		return nil, r.fail("entry at offset %d: name %.40q not NUL-terminated at c_namesize %d", start, name, nameSize)
	}
	h.Name = string(name[:nameSize-1])
	r.name, r.remain, r.pad = h.Name, int64(h.Size), pad(int64(h.Size))
	// The kernel checks c_check of regular files only (GNU cpio leaves
	// it 0 for symlinks).
	r.crc, r.want, r.sum = magic == MagicCRC && h.Mode&TypeMask == TypeReg, h.Check, 0
	if h.Name == Trailer {
		return h, r.skip()
	}
	if err := checkName(h.Name); err != nil {
		return nil, r.fail("entry %q at offset %d: %v", h.Name, start, err)
	}
	if h.Mode&TypeMask == TypeSymlink {
		return h, r.readLink(h)
	}
	return h, nil
}

// readLink reads a symlink's target (its data) into h.Linkname.
func (r *Reader) readLink(h *Header) error {
	if h.Size == 0 || h.Size >= MaxNameSize {
		return r.fail("symlink %q: target size %d out of range [1, %d]", h.Name, h.Size, MaxNameSize-1)
	}
	target := make([]byte, h.Size)
	if _, err := io.ReadFull(r, target); err != nil {
		return err
	}
	if bytes.IndexByte(target, 0) >= 0 {
		return r.fail("symlink %q: target contains NUL", h.Name)
	}
	h.Linkname = string(target)
	return nil
}

// checkName rejects absolute names and names that climb out with "..".
func checkName(name string) error {
	if strings.HasPrefix(name, "/") {
		return errors.New("absolute name")
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return errors.New(`name contains ".."`)
		}
	}
	if path.Clean(name) == ".." {
		return errors.New(`name is ".."`)
	}
	return nil
}

// Read reads data of the current entry; io.EOF at its end.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil && r.err != io.EOF {
		return 0, r.err
	}
	if r.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	n, err := r.r.Read(p)
	r.off += int64(n)
	r.remain -= int64(n)
	if r.crc {
		for _, c := range p[:n] {
			r.sum += uint32(c)
		}
	}
	if err == io.EOF && r.remain > 0 {
		err = r.fail("truncated at offset %d: data of %q (%d bytes missing)", r.off, r.name, r.remain)
	} else if err != nil && err != io.EOF {
		r.err = fmt.Errorf("read cpio data %q: %w", r.name, err)
		err = r.err
	}
	if r.remain == 0 && err == nil {
		err = r.endEntry()
	}
	return n, err
}

// endEntry verifies the checksum once all data was read.
func (r *Reader) endEntry() error {
	if r.crc && r.sum != r.want {
		return r.fail("entry %q: checksum %08x, header says %08x", r.name, r.sum, r.want)
	}
	r.crc = false
	return nil
}

// skip discards the rest of the current entry and its padding.
func (r *Reader) skip() error {
	if r.remain > 0 {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
	if r.remain == 0 {
		if err := r.endEntry(); err != nil {
			return err
		}
	}
	if r.pad > 0 {
		var b [4]byte
		if err := r.readFull(b[:r.pad], fmt.Sprintf("padding after %q", r.name)); err != nil {
			return err
		}
		r.pad = 0
	}
	return nil
}
