package image

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// holeBlock is the granularity of holes: a block of file content this
// large (at an offset it divides) that is all zeros is not written, so
// the file gets a hole there. It is the page size and the block size of
// btrfs and ext4 (cp --sparse=always and tar's sparse members likewise
// leave such blocks unallocated).
const holeBlock = 4096

var zeroBlock [holeBlock]byte

// sparseWriter writes the content of a new, empty file sequentially,
// skipping all-zero blocks. Sparse tar members (GNU.sparse, PAX sparse
// 0.x/1.0) reach it with their holes read as zeros, so they get their
// holes back; long runs of zeros in ordinary members become holes too.
type sparseWriter struct {
	fd  int
	off int64 // offset of the next byte
	end int64 // end of the last data written
}

// write appends b (at most one chunk; off stays a multiple of holeBlock
// between calls except at the end of the file).
func (w *sparseWriter) write(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), holeBlock)
		if isZero(b[:n]) {
			b, w.off = b[n:], w.off+int64(n)
			continue
		}
		// Extend the data run up to the next zero block.
		for n < len(b) {
			m := min(len(b)-n, holeBlock)
			if isZero(b[n : n+m]) {
				break
			}
			n += m
		}
		if err := pwriteAll(w.fd, b[:n], w.off); err != nil {
			return err
		}
		b, w.off = b[n:], w.off+int64(n)
		w.end = w.off
	}
	return nil
}

// finish sets the file's size when it ends in a hole.
func (w *sparseWriter) finish(size int64) error {
	if w.end < size {
		return unix.Ftruncate(w.fd, size)
	}
	return nil
}

func isZero(b []byte) bool {
	return b[0] == 0 && b[len(b)-1] == 0 && bytes.Equal(b, zeroBlock[:len(b)])
}

func pwriteAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
