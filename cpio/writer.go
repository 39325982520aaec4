package cpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrWriteTooLong is returned by Writer.Write beyond the entry's Size.
var ErrWriteTooLong = errors.New("cpio: write beyond the entry size")

// Writer writes a newc archive. Call WriteHeader for each entry, Write its
// data (not for symlinks: the header carries Linkname), then Close.
// Errors are sticky: after one, every call returns it.
type Writer struct {
	w       io.Writer
	name    string // current entry
	remain  int64  // data bytes still expected for it
	padding int64  // padding after its data
	err     error
	closed  bool
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteHeader finishes the previous entry and writes h. The header is
// written as given (inode, times, owners): deterministic output is the
// caller's choice of values. For a symlink, Size is set from Linkname.
func (w *Writer) WriteHeader(h *Header) error {
	if err := w.finish(); err != nil {
		return err
	}
	if err := checkWriteName(h.Name); err != nil {
		return fmt.Errorf("write cpio header %q: %w", h.Name, err)
	}
	hdr := *h
	var body []byte
	if hdr.Mode&TypeMask == TypeSymlink {
		if hdr.Linkname == "" || len(hdr.Linkname) >= MaxNameSize || strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return fmt.Errorf("write cpio header %q: symlink target %.40q: empty, too long or containing NUL", h.Name, hdr.Linkname)
		}
		hdr.Size = uint32(len(hdr.Linkname))
		body = []byte(hdr.Linkname)
	}
	if err := w.writeEntry(&hdr, Magic); err != nil {
		return err
	}
	w.name, w.remain, w.padding = hdr.Name, int64(hdr.Size), pad(int64(hdr.Size))
	if body != nil {
		_, err := w.Write(body)
		return err
	}
	return nil
}

// checkWriteName rejects names the kernel would not unpack.
func checkWriteName(name string) error {
	switch {
	case name == "":
		return errors.New("empty name")
	case len(name) >= MaxNameSize:
		return fmt.Errorf("name longer than %d bytes", MaxNameSize-1)
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("name contains NUL")
	case name == Trailer:
		return errors.New("name is the trailer's")
	}
	return checkName(name)
}

// writeEntry writes the header and padded name of h.
func (w *Writer) writeEntry(h *Header, magic string) error {
	var raw rawHeader
	raw.encode(h, magic, uint32(len(h.Name)+1))
	buf := make([]byte, 0, HeaderSize+len(h.Name)+4)
	buf, _ = binary.Append(buf, binary.BigEndian, &raw)
	buf = append(buf, h.Name...)
	buf = append(buf, 0)
	buf = append(buf, make([]byte, pad(int64(len(buf))))...)
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("write cpio header %q: %w", h.Name, err)
		return w.err
	}
	return nil
}

// Write writes data of the current entry.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("write cpio data: writer closed")
	}
	if int64(len(p)) > w.remain {
		return 0, fmt.Errorf("write cpio data %q: %w", w.name, ErrWriteTooLong)
	}
	n, err := w.w.Write(p)
	w.remain -= int64(n)
	if err != nil {
		w.err = fmt.Errorf("write cpio data %q: %w", w.name, err)
	}
	return n, w.err
}

// finish checks the current entry is complete and writes its padding.
func (w *Writer) finish() error {
	switch {
	case w.err != nil:
		return w.err
	case w.closed:
		return errors.New("write cpio: writer closed")
	case w.remain > 0:
		w.err = fmt.Errorf("write cpio data %q: %d bytes missing", w.name, w.remain)
		return w.err
	}
	if w.padding == 0 {
		return nil
	}
	if _, err := w.w.Write(make([]byte, w.padding)); err != nil {
		w.err = fmt.Errorf("write cpio padding %q: %w", w.name, err)
	}
	w.padding = 0
	return w.err
}

// Close finishes the last entry and writes the trailer. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	if err := w.finish(); err != nil {
		return err
	}
	if err := w.writeEntry(&Header{Name: Trailer, NLink: 1}, Magic); err != nil {
		return err
	}
	w.closed = true
	return nil
}
