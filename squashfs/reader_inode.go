package squashfs

import (
	"io/fs"
	"time"
)

// Inode is one inode read from an image; the FileInfo values of a Reader
// return it from Sys().
type Inode struct {
	Ref     uint64 // location in the inode table
	Type    uint16 // stored inode type, 1..14
	Mode    fs.FileMode
	UID     uint32
	GID     uint32
	ModTime time.Time
	Number  uint32
	Nlink   uint32
	// Size is a regular file's length, a symlink target's length or a
	// directory listing's size + 3.
	Size   int64
	Target string // symlink target
	Major  uint32 // device numbers
	Minor  uint32
	Xattr  uint32 // xattr id, 0xFFFFFFFF for none

	start     uint64 // regular files: first block
	frag      uint32
	fragOff   uint32
	listBlock uint64 // block list (files) or listing (dirs) position
	listOff   int
	parent    uint32
}

// basicType maps stored types 8..14 to 1..7.
func (in *Inode) basicType() uint16 {
	if in.Type >= typeExtDir {
		return in.Type - extOffset
	}
	return in.Type
}

// IsDir reports whether the inode is a directory.
func (in *Inode) IsDir() bool { return in.basicType() == typeDir }

var typeModes = [...]fs.FileMode{typeDir: fs.ModeDir, typeFile: 0, typeSymlink: fs.ModeSymlink,
	typeBlock: fs.ModeDevice, typeChar: fs.ModeDevice | fs.ModeCharDevice, typeFifo: fs.ModeNamedPipe, typeSocket: fs.ModeSocket}

// readInode reads the inode at ref.
func (r *Reader) readInode(ref uint64) (*Inode, error) {
	block, off := splitRef(ref)
	if off >= metaSize {
		return nil, corrupt("inode reference %#x: offset %d past a metadata block", ref, off)
	}
	c, err := r.cursorAt(r.sb.InodeTable, r.sb.DirectoryTable, block, int(off))
	if err != nil {
		return nil, err
	}
	b, err := c.read(inodeHeaderSize)
	if err != nil {
		return nil, err
	}
	var h inodeHeader
	decodeStruct(b, &h)
	if h.Type < typeDir || h.Type > typeExtSock {
		return nil, corrupt("inode %#x: unknown type %d", ref, h.Type)
	}
	in := &Inode{Ref: ref, Type: h.Type, Number: h.Number, ModTime: time.Unix(int64(h.Mtime), 0).UTC(), Xattr: invalidXattr}
	in.Mode = typeModes[in.basicType()] | permMode(h.Perm)
	if in.UID, err = r.id(h.UID); err != nil {
		return nil, err
	}
	if in.GID, err = r.id(h.GID); err != nil {
		return nil, err
	}
	if err := r.readInodeBody(c, in); err != nil {
		return nil, err
	}
	return in, nil
}

// permMode converts stored permission bits to fs.FileMode bits.
func permMode(p uint16) fs.FileMode {
	m := fs.FileMode(p & 0o777)
	if p&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if p&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if p&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// readInodeBody reads the type-specific part of an inode.
func (r *Reader) readInodeBody(c *cursor, in *Inode) error {
	switch in.Type {
	case typeDir:
		var d dirInode
		if err := readStruct(c, &d); err != nil {
			return err
		}
		in.Nlink, in.Size, in.listBlock, in.listOff, in.parent = d.Nlink, int64(d.FileSize), uint64(d.StartBlock), int(d.Offset), d.Parent
	case typeExtDir:
		var d extDirInode
		if err := readStruct(c, &d); err != nil {
			return err
		}
		in.Nlink, in.Size, in.listBlock, in.listOff, in.parent, in.Xattr = d.Nlink, int64(d.FileSize), uint64(d.StartBlock), int(d.Offset), d.Parent, d.Xattr
	case typeFile:
		var f fileInode
		if err := readStruct(c, &f); err != nil {
			return err
		}
		in.Nlink, in.start, in.frag, in.fragOff, in.Size = 1, uint64(f.StartBlock), f.Fragment, f.Offset, int64(f.FileSize)
	case typeExtFile:
		var f extFileInode
		if err := readStruct(c, &f); err != nil {
			return err
		}
		if f.FileSize > 1<<62 {
			return corrupt("inode %#x: file size %d", in.Ref, f.FileSize)
		}
		in.Nlink, in.start, in.frag, in.fragOff, in.Size, in.Xattr = f.Nlink, f.StartBlock, f.Fragment, f.Offset, int64(f.FileSize), f.Xattr
	default:
		return r.readSpecial(c, in)
	}
	if in.basicType() == typeFile {
		in.listBlock, in.listOff = c.block, c.off
	} else if in.listOff >= metaSize {
		return corrupt("directory inode %#x: listing offset %d", in.Ref, in.listOff)
	}
	return nil
}

// readSpecial reads symlink, device and IPC inodes.
func (r *Reader) readSpecial(c *cursor, in *Inode) error {
	ext := in.Type >= typeExtDir
	switch in.basicType() {
	case typeSymlink:
		var s symlinkInode
		if err := readStruct(c, &s); err != nil {
			return err
		}
		if s.TargetSize == 0 || s.TargetSize > maxSymlinkLen {
			return corrupt("symlink inode %#x: target of %d bytes", in.Ref, s.TargetSize)
		}
		t, err := c.read(int(s.TargetSize))
		if err != nil {
			return err
		}
		in.Nlink, in.Target, in.Size = s.Nlink, string(t), int64(s.TargetSize)
	case typeBlock, typeChar:
		var d devInode
		if err := readStruct(c, &d); err != nil {
			return err
		}
		in.Nlink = d.Nlink
		in.Major, in.Minor = decodeDev(d.Rdev)
	default:
		var p ipcInode
		if err := readStruct(c, &p); err != nil {
			return err
		}
		in.Nlink = p.Nlink
	}
	if ext {
		b, err := c.read(4)
		if err != nil {
			return err
		}
		in.Xattr = le.Uint32(b)
	}
	return nil
}

// readStruct reads a fixed-size struct from a metadata stream.
func readStruct(c *cursor, v any) error {
	b, err := c.read(sizeOf(v))
	if err != nil {
		return err
	}
	_, err = decodeStruct(b, v)
	return err
}

// id returns entry idx of the id table.
func (r *Reader) id(idx uint16) (uint32, error) {
	if idx >= r.sb.IDs {
		return 0, corrupt("id index %d past the id table (%d ids)", idx, r.sb.IDs)
	}
	b, err := r.lookupEntry(r.sb.IDTable, uint64(idx), 4)
	if err != nil {
		return 0, err
	}
	return le.Uint32(b), nil
}

// lookupEntry reads entry index of size bytes from a lookup table whose
// location list is at list (format.adoc "Storing Lookup Tables"); the
// entry's metadata block must lie before the list.
func (r *Reader) lookupEntry(list, index uint64, size int) ([]byte, error) {
	pos := index * uint64(size)
	var loc [8]byte
	if err := r.readAt(loc[:], list+8*(pos/metaSize)); err != nil {
		return nil, err
	}
	block := le.Uint64(loc[:])
	if block >= list {
		return nil, corrupt("lookup table block at %d is not before its location list at %d", block, list)
	}
	c := &cursor{r: r, block: block, off: int(pos % metaSize), start: block, end: list}
	return c.read(size)
}

// fragment returns the location and on-disk size field of fragment i.
func (r *Reader) fragment(i uint32) (uint64, uint32, error) {
	if i >= r.sb.Fragments {
		return 0, 0, corrupt("fragment %d past the fragment table (%d)", i, r.sb.Fragments)
	}
	b, err := r.lookupEntry(r.sb.FragmentTable, uint64(i), fragEntrySize)
	if err != nil {
		return 0, 0, err
	}
	var f fragEntry
	decodeStruct(b, &f)
	return f.Start, f.Size, nil
}
