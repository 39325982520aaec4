package squashfs

import (
	"errors"
	"io"
)

// contentReader streams a regular file's content: its blocks in order
// (holes as zeros), then the tail from its fragment. The block list is
// read from the inode table as it goes, never all at once.
type contentReader struct {
	r       *Reader
	in      *Inode
	list    *cursor
	nblocks uint64 // full-size blocks plus a short last block without fragment
	blk     uint64 // next block
	pos     uint64 // position of the next stored block
	left    int64  // bytes not yet returned
	buf     []byte
	scratch []byte
}

// newContentReader opens the content of a regular file inode.
func (r *Reader) newContentReader(in *Inode) (*contentReader, error) {
	if in.basicType() != typeFile {
		return nil, errors.New("not a regular file")
	}
	bs := uint64(r.bs)
	n := uint64(in.Size) / bs
	if in.frag == invalidFrag && uint64(in.Size)%bs != 0 {
		n++
	}
	c := &cursor{r: r, block: in.listBlock, off: in.listOff, start: r.sb.InodeTable, end: r.sb.DirectoryTable}
	return &contentReader{r: r, in: in, list: c, nblocks: n, pos: in.start, left: in.Size}, nil
}

func (f *contentReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		return 0, io.EOF
	}
	if len(f.buf) == 0 {
		if err := f.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.buf[:min(int64(len(f.buf)), f.left)])
	f.buf = f.buf[n:]
	f.left -= int64(n)
	return n, nil
}

// next loads the next block or the fragment tail into f.buf.
func (f *contentReader) next() error {
	bs := int64(f.r.bs)
	if f.blk < f.nblocks {
		want := min(bs, f.left)
		f.blk++
		b, err := f.list.read(4)
		if err != nil {
			return err
		}
		return f.loadBlock(le.Uint32(b), int(want))
	}
	if f.in.frag == invalidFrag {
		return corrupt("file inode %#x: content ends before its size", f.in.Ref)
	}
	return f.loadTail()
}

// loadBlock reads one data block of on-disk size field sz that holds
// want bytes (a shorter block is padded with zeros, as the kernel does).
func (f *contentReader) loadBlock(sz uint32, want int) error {
	if cap(f.scratch) < f.r.bs {
		f.scratch = make([]byte, f.r.bs)
	}
	if sz == 0 {
		f.buf = clear0(f.scratch[:want])
		return nil
	}
	data, err := f.r.readBlock(f.pos, sz, f.scratch[:0])
	if err != nil {
		return err
	}
	f.pos += uint64(sz &^ dataRawBit)
	if len(data) > want {
		return corrupt("file inode %#x: block %d holds %d bytes, want %d", f.in.Ref, f.blk-1, len(data), want)
	}
	f.buf = append(data, make([]byte, want-len(data))...)
	return nil
}

func clear0(b []byte) []byte {
	clear(b)
	return b
}

// loadTail reads the file's tail from its fragment block.
func (f *contentReader) loadTail() error {
	start, sz, err := f.r.fragment(f.in.frag)
	if err != nil {
		return err
	}
	frag, err := f.r.fragmentBlock(start, sz)
	if err != nil {
		return err
	}
	off, n := uint64(f.in.fragOff), uint64(f.left)
	if off > uint64(len(frag)) || n > uint64(len(frag))-off {
		return corrupt("file inode %#x: tail of %d bytes at %d past its fragment (%d bytes)", f.in.Ref, n, off, len(frag))
	}
	f.buf = frag[off : off+n]
	return nil
}

// readBlock reads and decompresses the data block at pos with on-disk
// size field sz into dst.
func (r *Reader) readBlock(pos uint64, sz uint32, dst []byte) ([]byte, error) {
	n := sz &^ dataRawBit
	if sz>>25 != 0 || n == 0 || n > uint32(r.bs) {
		return nil, corrupt("data block at %d: size field %#x", pos, sz)
	}
	raw := make([]byte, n)
	if err := r.readAt(raw, pos); err != nil {
		return nil, err
	}
	if sz&dataRawBit != 0 {
		return append(dst[:0], raw...), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out, err := r.dec.decompress(dst, raw, r.bs)
	if err != nil {
		return nil, corrupt("data block at %d: %v", pos, err)
	}
	return out, nil
}

// fragmentBlock returns a decompressed fragment block, keeping the last
// few: consecutive small files share them.
func (r *Reader) fragmentBlock(start uint64, sz uint32) ([]byte, error) {
	r.mu.Lock()
	if b, ok := r.frags[start]; ok {
		r.mu.Unlock()
		return b, nil
	}
	r.mu.Unlock()
	b, err := r.readBlock(start, sz, nil)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.frags) >= 4 {
		clear(r.frags)
	}
	r.frags[start] = b
	return b, nil
}
