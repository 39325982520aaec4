package squashfs

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"path"
	"strings"
)

// maxListing bounds a directory listing the reader accepts (the
// biggest real directories take a few MiB), so that a hostile image
// cannot make it collect millions of entries.
const maxListing = 8 << 20

// dirent is one entry of a directory listing.
type dirent struct {
	name   string
	ref    uint64
	number uint32
	typ    uint16 // basic type
}

// sizeOf is the encoded size of a fixed-size struct.
func sizeOf(v any) int { return binary.Size(v) }

// readDir returns the entries of a directory inode, checking the
// listing's structure: at most 256 entries per header, names of 1 to 256
// bytes without '/' or NUL (nor "." or ".."), strictly increasing in byte
// order (which the kernel's lookup relies on, and which rules out
// duplicates), and the listing ending exactly at its recorded size.
func (r *Reader) readDir(dir *Inode) ([]dirent, error) {
	if !dir.IsDir() {
		return nil, errors.New("not a directory")
	}
	size := dir.Size - 3
	if size <= 0 {
		return nil, nil
	}
	if size > maxListing {
		return nil, corrupt("directory inode %#x: listing of %d bytes exceeds %d", dir.Ref, size, maxListing)
	}
	c, err := r.cursorAt(r.sb.DirectoryTable, r.sb.BytesUsed, dir.listBlock, dir.listOff)
	if err != nil {
		return nil, err
	}
	var out []dirent
	for read := int64(0); read < size; {
		var h dirHeader
		if err := readStruct(c, &h); err != nil {
			return nil, err
		}
		if h.Count >= dirMaxEntries {
			return nil, corrupt("directory inode %#x: header of %d entries", dir.Ref, uint64(h.Count)+1)
		}
		read += dirHeaderSize
		for range h.Count + 1 {
			e, n, err := r.readDirEntry(c, h, dir)
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && e.name <= out[len(out)-1].name {
				return nil, corrupt("directory inode %#x: %q after %q (entries must be sorted and unique)", dir.Ref, e.name, out[len(out)-1].name)
			}
			out = append(out, e)
			read += n
		}
		if read > size {
			return nil, corrupt("directory inode %#x: listing runs past its size %d", dir.Ref, size)
		}
	}
	return out, nil
}

// readDirEntry reads one entry after header h; n is its encoded size.
func (r *Reader) readDirEntry(c *cursor, h dirHeader, dir *Inode) (dirent, int64, error) {
	var e dirEntry
	if err := readStruct(c, &e); err != nil {
		return dirent{}, 0, err
	}
	if int(e.NameSize)+1 > maxNameLen {
		return dirent{}, 0, corrupt("directory inode %#x: name of %d bytes", dir.Ref, int(e.NameSize)+1)
	}
	name, err := c.read(int(e.NameSize) + 1)
	if err != nil {
		return dirent{}, 0, err
	}
	s := string(name)
	if s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return dirent{}, 0, corrupt("directory inode %#x: bad name %q", dir.Ref, s)
	}
	if e.Type < typeDir || e.Type > typeSocket {
		return dirent{}, 0, corrupt("directory inode %#x: entry %q has type %d", dir.Ref, s, e.Type)
	}
	if e.Offset >= metaSize {
		return dirent{}, 0, corrupt("directory inode %#x: entry %q: inode offset %d", dir.Ref, s, e.Offset)
	}
	d := dirent{name: s, ref: inodeRef(uint64(h.Start), e.Offset), number: h.Number + uint32(int32(e.InodeOff)), typ: e.Type}
	return d, dirEntrySize + int64(len(name)), nil
}

// root reads the root directory inode.
func (r *Reader) root() (*Inode, error) {
	in, err := r.readInode(r.sb.RootInode)
	if err != nil {
		return nil, err
	}
	if !in.IsDir() {
		return nil, corrupt("root inode is not a directory")
	}
	return in, nil
}

// entryInode reads the inode of a listing entry and checks it agrees with
// the entry's type.
func (r *Reader) entryInode(e dirent) (*Inode, error) {
	in, err := r.readInode(e.ref)
	if err != nil {
		return nil, err
	}
	if in.basicType() != e.typ {
		return nil, corrupt("entry %q has type %d but its inode has type %d", e.name, e.typ, in.Type)
	}
	return in, nil
}

// maxHops bounds symlink resolution, as Linux's MAXSYMLINKS.
const maxHops = 40

// resolve returns the inode at an fs.FS path, following symlinks in the
// image (the last one only when follow is set; absolute targets start at
// the image root).
func (r *Reader) resolve(op, name string, follow bool) (*Inode, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	in, err := r.walkPath(strings.Split(name, "/"), follow)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return in, nil
}

func (r *Reader) walkPath(parts []string, follow bool) (*Inode, error) {
	root, err := r.root()
	if err != nil {
		return nil, err
	}
	stack := []*Inode{root}
	for hops := 0; len(parts) > 0; {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			stack = stack[:max(1, len(stack)-1)]
			continue
		}
		child, err := r.lookup(stack[len(stack)-1], p)
		if err != nil {
			return nil, err
		}
		if child.basicType() == typeSymlink && (len(parts) > 0 || follow) {
			if hops++; hops > maxHops {
				return nil, errors.New("too many levels of symbolic links")
			}
			if strings.HasPrefix(child.Target, "/") {
				stack = stack[:1]
			}
			parts = append(strings.Split(path.Clean(child.Target), "/"), parts...)
			continue
		}
		if len(parts) > 0 && !child.IsDir() {
			return nil, errors.New("not a directory")
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

// lookup returns the inode named name in directory dir.
func (r *Reader) lookup(dir *Inode, name string) (*Inode, error) {
	if !dir.IsDir() {
		return nil, errors.New("not a directory")
	}
	ents, err := r.readDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.name == name {
			return r.entryInode(e)
		}
	}
	return nil, fs.ErrNotExist
}
