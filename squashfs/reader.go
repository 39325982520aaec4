package squashfs

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"time"
)

// ErrCorrupt is wrapped by every error about a malformed image.
var ErrCorrupt = errors.New("squashfs: corrupt image")

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Reader reads a squashfs 4.0 image: enough for listing, reading and
// extracting files, and for checking what a writer produced. It is an
// fs.FS (and fs.ReadDirFS, fs.StatFS, fs.ReadLinkFS). Every structure is
// read on demand and checked against the image bounds, so a hostile image
// gets an error wrapping ErrCorrupt, never a panic, a loop or an
// allocation beyond a block. A Reader is safe for concurrent use.
type Reader struct {
	r    io.ReaderAt
	size int64
	sb   superblock
	bs   int

	mu    sync.Mutex
	dec   decoder
	cache map[uint64]metaBlock
	order []uint64
	frags map[uint64][]byte
}

// metaBlock is a decompressed metadata block and where the next one is.
type metaBlock struct {
	data []byte
	next uint64
}

const metaCacheSize = 64

// NewReader opens the image of size bytes in r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	rd := &Reader{r: r, size: size, cache: map[uint64]metaBlock{}, frags: map[uint64][]byte{}}
	b := make([]byte, superblockSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, corrupt("image of %d bytes is shorter than a superblock", size)
		}
		return nil, fmt.Errorf("squashfs: read superblock: %w", err)
	}
	if _, err := decodeStruct(b, &rd.sb); err != nil {
		return nil, corrupt("superblock: %v", err)
	}
	if err := rd.checkSuperblock(); err != nil {
		return nil, err
	}
	rd.bs = int(rd.sb.BlockSize)
	dec, err := newDecoder(Compressor(rd.sb.Compressor), rd.bs)
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	rd.dec = dec
	return rd, nil
}

// checkSuperblock validates the fields the rest of the reader relies on,
// each with its own message.
func (r *Reader) checkSuperblock() error {
	sb := &r.sb
	switch {
	case sb.Magic != magic:
		return corrupt("bad magic %#x (want %#x, \"hsqs\")", sb.Magic, magic)
	case sb.Major != versionMajor || sb.Minor != versionMinor:
		return corrupt("version %d.%d (want 4.0)", sb.Major, sb.Minor)
	case sb.BlockSize < MinBlockSize || sb.BlockSize > MaxBlockSize || bits.OnesCount32(sb.BlockSize) != 1:
		return corrupt("block size %d is not a power of two from 4 KiB to 1 MiB", sb.BlockSize)
	case 1<<sb.BlockLog != sb.BlockSize:
		return corrupt("block log %d does not match block size %d", sb.BlockLog, sb.BlockSize)
	case sb.BytesUsed > uint64(r.size):
		return corrupt("bytes used %d exceeds the image size %d", sb.BytesUsed, r.size)
	case sb.InodeTable >= sb.DirectoryTable:
		return corrupt("inode table at %d is not before the directory table at %d", sb.InodeTable, sb.DirectoryTable)
	case sb.DirectoryTable >= sb.BytesUsed:
		return corrupt("directory table at %d is past the end (%d)", sb.DirectoryTable, sb.BytesUsed)
	case sb.IDs == 0:
		return corrupt("empty id table")
	case sb.IDTable >= sb.BytesUsed:
		return corrupt("id table at %d is past the end (%d)", sb.IDTable, sb.BytesUsed)
	}
	if sb.Fragments > 0 && sb.FragmentTable >= sb.BytesUsed {
		return corrupt("fragment table at %d is past the end (%d)", sb.FragmentTable, sb.BytesUsed)
	}
	if sb.XattrIDTable != invalidTable && sb.XattrIDTable >= sb.BytesUsed {
		return corrupt("xattr table at %d is past the end (%d)", sb.XattrIDTable, sb.BytesUsed)
	}
	if Compressor(sb.Compressor).String() == fmt.Sprintf("compressor(%d)", sb.Compressor) {
		return corrupt("unknown compressor id %d", sb.Compressor)
	}
	return nil
}

// Compressor returns the image's compressor.
func (r *Reader) Compressor() Compressor { return Compressor(r.sb.Compressor) }

// BlockSize returns the data block size.
func (r *Reader) BlockSize() int { return r.bs }

// Inodes returns the number of inodes.
func (r *Reader) Inodes() uint32 { return r.sb.Inodes }

// BytesUsed returns the superblock's bytes_used.
func (r *Reader) BytesUsed() int64 { return int64(r.sb.BytesUsed) }

// ModTime returns the superblock's time.
func (r *Reader) ModTime() time.Time { return time.Unix(int64(r.sb.ModTime), 0).UTC() }

// readAt reads exactly len(b) bytes at off, within bytes_used.
func (r *Reader) readAt(b []byte, off uint64) error {
	if off > r.sb.BytesUsed || uint64(len(b)) > r.sb.BytesUsed-off {
		return corrupt("read of %d bytes at %d past the end (%d)", len(b), off, r.sb.BytesUsed)
	}
	if _, err := r.r.ReadAt(b, int64(off)); err != nil {
		return fmt.Errorf("squashfs: read %d bytes at %d: %w", len(b), off, err)
	}
	return nil
}

// metaBlock returns the metadata block at pos, from the cache or the
// image (caller holds r.mu).
func (r *Reader) metaBlock(pos uint64) (metaBlock, error) {
	if m, ok := r.cache[pos]; ok {
		return m, nil
	}
	var h [2]byte
	if err := r.readAt(h[:], pos); err != nil {
		return metaBlock{}, err
	}
	n := int(le.Uint16(h[:]) &^ metaRawBit)
	if n == 0 || n > metaSize {
		return metaBlock{}, corrupt("metadata block at %d: size %d", pos, n)
	}
	raw := make([]byte, n)
	if err := r.readAt(raw, pos+metaHeaderSize); err != nil {
		return metaBlock{}, err
	}
	data := raw
	if le.Uint16(h[:])&metaRawBit == 0 {
		var err error
		if data, err = r.dec.decompress(nil, raw, metaSize); err != nil {
			return metaBlock{}, corrupt("metadata block at %d: %v", pos, err)
		}
	}
	m := metaBlock{data: data, next: pos + metaHeaderSize + uint64(n)}
	if len(r.order) >= metaCacheSize {
		delete(r.cache, r.order[0])
		r.order = r.order[1:]
	}
	r.cache[pos] = m
	r.order = append(r.order, pos)
	return m, nil
}

// cursor reads a stream of metadata records from a table.
type cursor struct {
	r          *Reader
	block      uint64 // absolute position of the current block
	off        int
	start, end uint64 // the table's bounds
}

// cursorAt starts reading the table [start, end) at a block (relative to
// start) and an offset inside it.
func (r *Reader) cursorAt(start, end, block uint64, off int) (*cursor, error) {
	if block >= end-start {
		return nil, corrupt("metadata reference %d past its table (%d bytes)", block, end-start)
	}
	return &cursor{r: r, block: start + block, off: off, start: start, end: end}, nil
}

// read returns the next n bytes (n <= a few KiB) of the stream.
func (c *cursor) read(n int) ([]byte, error) {
	out := make([]byte, 0, n)
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	for len(out) < n {
		m, err := c.r.metaBlock(c.block)
		if err != nil {
			return nil, err
		}
		if c.off > len(m.data) {
			return nil, corrupt("metadata offset %d past the block at %d (%d bytes)", c.off, c.block, len(m.data))
		}
		k := copy(out[len(out):n], m.data[c.off:])
		out, c.off = out[:len(out)+k], c.off+k
		if c.off == len(m.data) && len(out) < n {
			if m.next >= c.end {
				return nil, corrupt("metadata runs past the end of its table at %d", c.end)
			}
			c.block, c.off = m.next, 0
		}
	}
	return out, nil
}
