package squashfs

import (
	"fmt"
	"math"
	"sort"
)

// tables writes the inode and directory tables of a finished tree.
type tables struct {
	bs      int
	inodes  *metaWriter
	dirs    *metaWriter
	xattrs  *xattrTable
	ids     map[uint32]uint16
	idList  []uint32
	count   uint32 // inodes numbered so far
	ordered []*inode
}

func newTables(enc encoder, bs int) *tables {
	return &tables{bs: bs, inodes: newMetaWriter(enc), dirs: newMetaWriter(enc),
		xattrs: newXattrTable(enc), ids: map[uint32]uint16{}}
}

// sortedNames returns a directory's names in byte order, the order the
// kernel's lookup relies on.
func sortedNames(d *inode) []string {
	names := make([]string, 0, len(d.kids))
	for n := range d.kids {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// number assigns inode numbers, counts links and keeps each directory's
// sorted names: the root is 1 and the children of each directory get
// consecutive numbers, so that a directory listing needs few headers.
func (t *tables) number(root *inode, names map[*inode][]string) {
	t.count = 1
	root.number, root.nlink = 1, 2
	t.ordered = append(t.ordered[:0], root)
	var visit func(d *inode)
	visit = func(d *inode) {
		ns := sortedNames(d)
		names[d] = ns
		for _, n := range ns {
			c := d.kids[n]
			if c.typ == typeDir {
				d.nlink++
				c.nlink = 2
			} else {
				c.nlink++
			}
			if c.number == 0 {
				t.count++
				c.number = t.count
				t.ordered = append(t.ordered, c)
			}
		}
		for _, n := range ns {
			if c := d.kids[n]; c.typ == typeDir {
				visit(c)
			}
		}
	}
	visit(root)
}

// id returns the id table index of a uid or gid.
func (t *tables) id(v uint32) (uint16, error) {
	if i, ok := t.ids[v]; ok {
		return i, nil
	}
	if len(t.idList) > math.MaxUint16 {
		return 0, fmt.Errorf("more than %d distinct uids and gids", math.MaxUint16+1)
	}
	i := uint16(len(t.idList))
	t.ids[v] = i
	t.idList = append(t.idList, v)
	return i, nil
}

// header returns the common inode header of ino with type typ.
func (t *tables) header(ino *inode, typ uint16) (inodeHeader, error) {
	uid, err := t.id(ino.uid)
	if err != nil {
		return inodeHeader{}, err
	}
	gid, err := t.id(ino.gid)
	if err != nil {
		return inodeHeader{}, err
	}
	if ino.xattrIdx, err = t.xattrs.add(ino.xattrs); err != nil {
		return inodeHeader{}, err
	}
	if len(ino.xattrs) > 0 && typ < typeExtDir {
		typ += extOffset
	}
	return inodeHeader{Type: typ, Perm: ino.perm, UID: uid, GID: gid, Mtime: ino.mtime, Number: ino.number}, nil
}

// writeInode appends a non-directory inode to the inode table.
func (t *tables) writeInode(ino *inode) error {
	block, off := t.inodes.pos()
	ino.ref, ino.written = inodeRef(block, off), true
	typ := ino.typ
	if typ == typeFile && t.needsExtFile(ino) {
		typ = typeExtFile
	}
	h, err := t.header(ino, typ)
	if err != nil {
		return err
	}
	b := appendStruct(make([]byte, 0, 64), h)
	ext := h.Type >= typeExtDir
	switch ino.typ {
	case typeFile:
		b = t.appendFile(b, ino, ext)
	case typeSymlink:
		b = appendStruct(b, symlinkInode{Nlink: ino.nlink, TargetSize: uint32(len(ino.target))})
		b = append(b, ino.target...)
	case typeBlock, typeChar:
		b = appendStruct(b, devInode{Nlink: ino.nlink, Rdev: ino.rdev})
	default:
		b = appendStruct(b, ipcInode{Nlink: ino.nlink})
	}
	if ext && ino.typ != typeFile {
		b = le.AppendUint32(b, ino.xattrIdx)
	}
	return t.inodes.write(b)
}

func (t *tables) needsExtFile(ino *inode) bool {
	f := ino.file
	return ino.nlink > 1 || len(ino.xattrs) > 0 || f.sparse > 0 ||
		f.start > math.MaxUint32 || f.size > math.MaxUint32
}

func (t *tables) appendFile(b []byte, ino *inode, ext bool) []byte {
	f := ino.file
	if ext {
		b = appendStruct(b, extFileInode{StartBlock: f.start, FileSize: uint64(f.size), Sparse: uint64(f.sparse),
			Nlink: ino.nlink, Fragment: f.frag, Offset: f.fragOff, Xattr: ino.xattrIdx})
	} else {
		b = appendStruct(b, fileInode{StartBlock: uint32(f.start), Fragment: f.frag, Offset: f.fragOff, FileSize: uint32(f.size)})
	}
	for _, s := range f.blocks {
		b = le.AppendUint32(b, s)
	}
	return b
}
