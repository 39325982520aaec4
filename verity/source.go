package verity

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrShortData is wrapped by errors about a data device (or file) shorter
// than the data blocks a tree covers.
var ErrShortData = errors.New("verity: data device too small")

// dataLen returns the size of data when it can be known without reading:
// a regular file or block device, or anything with a Size method
// (bytes.Reader, io.SectionReader).
func dataLen(data io.ReaderAt) (int64, bool) {
	switch d := data.(type) {
	case *os.File:
		st, err := d.Stat()
		if err != nil {
			return 0, false
		}
		if st.Mode().IsRegular() {
			return st.Size(), true
		}
		if st.Mode()&os.ModeDevice != 0 {
			n, err := d.Seek(0, io.SeekEnd)
			return n, err == nil
		}
	case interface{ Size() int64 }:
		return d.Size(), true
	}
	return 0, false
}

// checkDataLen refuses data shorter than need bytes, when its size is known.
func checkDataLen(data io.ReaderAt, need int64) error {
	if n, ok := dataLen(data); ok && n < need {
		return fmt.Errorf("%w: data device is %d bytes, the tree covers %d", ErrShortData, n, need)
	}
	return nil
}

// blockSource hands a leaf worker the data bytes at an offset: copied into
// the worker's buffer (any io.ReaderAt) or, on Linux for an *os.File, a
// window of a read-only mapping of the file (mapSource), which saves the
// copy.
type blockSource interface {
	// view returns len(buf) bytes at off (in buf or in the mapping) and a
	// function releasing them.
	view(buf []byte, off int64) ([]byte, func(), error)
	// close releases the source when the pass is over.
	close()
}

// readerSource copies through io.ReaderAt.
type readerSource struct{ r io.ReaderAt }

func (s readerSource) view(buf []byte, off int64) ([]byte, func(), error) {
	return buf, func() {}, readFull(s.r, buf, off)
}

func (readerSource) close() {}

// newSource picks the fastest source for the first size bytes of data.
func newSource(data io.ReaderAt, size int64) blockSource {
	if s := mapSourceFor(data, size); s != nil {
		return s
	}
	return readerSource{data}
}

// faultGuard turns a memory fault in a mapping (the file shrank under us:
// SIGBUS) into an error; call it deferred in a goroutine running with
// debug.SetPanicOnFault(true).
func faultGuard(err *error) {
	e := recover()
	if e == nil {
		return
	}
	if _, ok := e.(interface{ Addr() uintptr }); !ok {
		panic(e)
	}
	*err = fmt.Errorf("read data: memory fault in the mapped file (was it truncated?): %v", e)
}
