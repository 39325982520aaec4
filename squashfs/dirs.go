package squashfs

import (
	"fmt"
	"math"
)

// listing is where a directory's entries went in the directory table.
type listing struct {
	block  uint32 // metadata block, relative to the directory table
	offset uint16
	size   uint32 // bytes of headers and entries
	index  []byte // dirIndex records, each followed by its name
	count  int    // index records
}

// writeTree writes the inodes and listings below d, then d itself
// (post-order: a listing needs its children's inode locations, and a
// directory inode needs its listing's location). Subdirectories go first
// so that the other children's inodes end up next to each other.
func (t *tables) writeTree(d *inode, parent uint32, names map[*inode][]string) error {
	for _, n := range names[d] {
		if c := d.kids[n]; c.typ == typeDir {
			if err := t.writeTree(c, d.number, names); err != nil {
				return err
			}
		}
	}
	for _, n := range names[d] {
		if c := d.kids[n]; c.typ != typeDir && !c.written {
			if err := t.writeInode(c); err != nil {
				return err
			}
		}
	}
	l, err := t.writeListing(d, names[d])
	if err != nil {
		return err
	}
	return t.writeDirInode(d, parent, l)
}

// writeListing writes a directory's entries in runs behind headers (see
// format.adoc "Directory Table"). A run ends after 256 entries, when the
// next inode lies in another metadata block or too far (int16) from the
// run's base number, and when the listing crosses into a new directory
// table block. Each header that starts in a new block gets a directory
// index record, so that a lookup in a big directory decompresses one
// block.
func (t *tables) writeListing(d *inode, names []string) (listing, error) {
	block, off := t.dirs.pos()
	l := listing{block: uint32(block), offset: off}
	start := t.dirs.stream()
	prevBlock := start / metaSize
	for i := 0; i < len(names); {
		hdrAt := t.dirs.stream()
		hdrBlock, _ := t.dirs.pos()
		first := d.kids[names[i]]
		iblock, _ := splitRef(first.ref)
		n := t.runLength(d, names[i:], iblock, first.number, hdrAt)
		if hdrAt/metaSize != prevBlock {
			prevBlock = hdrAt / metaSize
			if l.count == math.MaxUint16 {
				return l, fmt.Errorf("directory index of more than %d records", math.MaxUint16)
			}
			l.index = appendStruct(l.index, dirIndex{Index: uint32(hdrAt - start), Start: uint32(hdrBlock), NameSize: uint32(len(names[i]) - 1)})
			l.index = append(l.index, names[i]...)
			l.count++
		}
		b := appendStruct(make([]byte, 0, 512), dirHeader{Count: uint32(n - 1), Start: uint32(iblock), Number: first.number})
		for _, name := range names[i : i+n] {
			c := d.kids[name]
			_, ioff := splitRef(c.ref)
			b = appendStruct(b, dirEntry{Offset: ioff, InodeOff: int16(int64(c.number) - int64(first.number)),
				Type: c.typ, NameSize: uint16(len(name) - 1)})
			b = append(b, name...)
		}
		if err := t.dirs.write(b); err != nil {
			return l, err
		}
		i += n
	}
	size := t.dirs.stream() - start
	if size > math.MaxUint32-3 {
		return l, fmt.Errorf("directory listing of %d bytes", size)
	}
	l.size = uint32(size)
	return l, nil
}

// runLength is the number of entries of names that share a header
// written at stream position hdrAt.
func (t *tables) runLength(d *inode, names []string, iblock uint64, base uint32, hdrAt uint64) int {
	pos := hdrAt + dirHeaderSize
	n := 0
	for ; n < len(names) && n < dirMaxEntries; n++ {
		c := d.kids[names[n]]
		b, _ := splitRef(c.ref)
		delta := int64(c.number) - int64(base)
		if b != iblock || delta < math.MinInt16 || delta > math.MaxInt16 {
			break
		}
		if n > 0 && pos/metaSize != hdrAt/metaSize {
			break
		}
		pos += dirEntrySize + uint64(len(names[n]))
	}
	return n
}

// writeDirInode appends a directory inode: extended when it has xattrs, an
// index, or a listing too long for the basic inode's u16 size.
func (t *tables) writeDirInode(d *inode, parent uint32, l listing) error {
	block, off := t.inodes.pos()
	d.ref, d.written = inodeRef(block, off), true
	size := l.size + 3 // the kernel counts "." and ".."
	typ := uint16(typeDir)
	if l.count > 0 || size > math.MaxUint16 {
		typ = typeExtDir
	}
	h, err := t.header(d, typ)
	if err != nil {
		return err
	}
	b := appendStruct(make([]byte, 0, 64), h)
	if h.Type == typeExtDir {
		b = appendStruct(b, extDirInode{Nlink: d.nlink, FileSize: size, StartBlock: l.block, Parent: parent,
			IndexCount: uint16(l.count), Offset: l.offset, Xattr: d.xattrIdx})
		b = append(b, l.index...)
	} else {
		b = appendStruct(b, dirInode{StartBlock: l.block, Nlink: d.nlink, FileSize: uint16(size), Offset: l.offset, Parent: parent})
	}
	return t.inodes.write(b)
}
