package luks2

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Device is what the header and keyslot code reads and writes: a block
// device or image file.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// ErrBusy is returned when a device to be formatted or restored is in use:
// mounted, mapped, held open exclusively, or the backing file of a loop
// device.
var ErrBusy = errors.New("device is in use")

// syncer is implemented by *os.File.
type syncer interface{ Sync() error }

func syncDev(d any) error {
	if s, ok := d.(syncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// deviceSize returns the size of d when it can tell: an *os.File (a
// regular file or a block device, measured by seeking to its end) or
// anything with a Size method (bytes.Reader, io.SectionReader).
func deviceSize(d any) (uint64, bool) {
	switch v := d.(type) {
	case *os.File:
		n, err := v.Seek(0, io.SeekEnd)
		return uint64(n), err == nil
	case interface{ Size() int64 }:
		return uint64(v.Size()), true
	}
	return 0, false
}

// checkRegion fails when [off, off+n) of d extends past its end, so that
// sizes taken from a header are bounded by the device before they are
// read, written or allocated.
func checkRegion(d any, what string, off, n uint64) error {
	size, ok := deviceSize(d)
	if !ok {
		return nil
	}
	if off > size || n > size-off {
		return fmt.Errorf("%s [%d, +%d) extends past the end of the %d-byte device", what, off, n, size)
	}
	return nil
}

// wipeChunk is the buffer size for overwriting device regions: wipes never
// allocate in proportion to a size read from a header.
const wipeChunk = 1 << 20

// fillRegion overwrites n bytes of d from off with zeros, or with random
// bytes when random is set, in chunks of at most wipeChunk bytes.
func fillRegion(d io.WriterAt, off, n uint64, random bool) error {
	buf := make([]byte, min(n, wipeChunk))
	for done := uint64(0); done < n; done += uint64(len(buf)) {
		chunk := buf[:min(uint64(len(buf)), n-done)]
		if random {
			if err := randomBytes(nil, chunk); err != nil {
				return err
			}
		}
		if _, err := d.WriteAt(chunk, int64(off+done)); err != nil {
			return fmt.Errorf("wipe at %d: %w", off+done, err)
		}
	}
	return nil
}

// openFile opens a device or image for reading (and writing).
func openFile(path string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open luks2 device: %w", err)
	}
	return f, nil
}

// OpenExclusive opens the device or image at path for writing the way
// cryptsetup does before it formats or restores a header: a block device
// with O_EXCL, which the kernel refuses (EBUSY) while the device is
// mounted, mapped by device-mapper or held by another exclusive opener; a
// regular file is refused while it backs a loop device. Both give an
// error wrapping ErrBusy.
func OpenExclusive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|oExclDevice, 0)
	if err != nil {
		if isBusy(err) {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("open %s: %w (mounted, mapped or open exclusively: %v)", path, ErrBusy, err)
		}
		return nil, fmt.Errorf("open luks2 device: %w", err)
	}
	if loop, err := loopBacking(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	} else if loop != "" {
		f.Close()
		return nil, fmt.Errorf("open %s: %w: it is the backing file of %s", path, ErrBusy, loop)
	}
	return f, nil
}
