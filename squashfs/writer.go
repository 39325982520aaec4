package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Writer builds a squashfs image from a stream of entries. Add entries in
// any order (a tar stream's order, say); Finish sorts them, writes the
// metadata and the superblock. File content is compressed while Add reads
// it, on Options.Workers goroutines, and written in Add order.
//
// A Writer is not safe for concurrent use. An error while reading or
// writing content is sticky: Add and Finish return it from then on.
type Writer struct {
	opts    Options
	ctx     context.Context
	dst     io.WriterAt
	out     *outWriter
	pipe    *pipeline
	root    *inode
	dataAt  int64
	skipped int
	newest  uint32
	err     error
	done    bool
}

// NewWriter starts an image written to dst, which must be empty (or
// support Truncate(int64) error, as *os.File does: the image may end
// before the highest offset written). ctx stops the work: Add and Finish
// then fail with its error.
func NewWriter(ctx context.Context, dst io.WriterAt, opts Options) (*Writer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &Writer{opts: o, ctx: ctx, dst: dst}
	w.dataAt = superblockSize + metaHeaderSize + int64(len(compressorOptions(o.Compressor, o.Level, o.BlockSize)))
	w.out = newOutWriter(dst, w.dataAt)
	if w.pipe, err = newPipeline(ctx, w.out, o); err != nil {
		return nil, err
	}
	w.root = w.newDir()
	return w, nil
}

// newDir is an implicit directory: 0755, root-owned, mtime Epoch.
func (w *Writer) newDir() *inode {
	return &inode{typ: typeDir, perm: 0o755, mtime: clampTime(w.opts.Epoch), kids: map[string]*inode{}}
}

// Add adds one entry. content supplies a regular file's Size bytes (it
// is read before Add returns) and is ignored for other types. An entry at
// an existing path replaces it, except that a directory over a directory
// only updates its attributes. Missing parent directories are created
// (0755, owned by root).
func (w *Writer) Add(e Entry, content io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("squashfs: Add after Finish")
	}
	if err := w.ctx.Err(); err != nil {
		return w.fail(err)
	}
	if err := w.add(e, content); err != nil {
		return fmt.Errorf("squashfs: add %s: %w", e.Path, err)
	}
	return nil
}

func (w *Writer) add(e Entry, content io.Reader) error {
	parts, err := splitPath(e.Path)
	if err != nil {
		return err
	}
	if e.HardLink != "" {
		return w.addLink(parts, e.HardLink)
	}
	ino, err := w.newInode(e)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		if ino.typ != typeDir {
			return errors.New("the root must be a directory")
		}
		w.root.merge(ino)
		return nil
	}
	parent, err := w.parentOf(parts)
	if err != nil {
		return err
	}
	if ino.typ == typeFile {
		if err := w.pipe.addFile(ino.file, content, e.Size); err != nil {
			w.err = err
			return err
		}
	}
	name := parts[len(parts)-1]
	if old, ok := parent.kids[name]; ok && old.typ == typeDir && ino.typ == typeDir {
		old.merge(ino)
		return nil
	}
	parent.kids[name] = ino
	return nil
}

// merge copies a directory entry's attributes onto an existing directory.
func (d *inode) merge(n *inode) {
	d.perm, d.uid, d.gid, d.mtime, d.xattrs = n.perm, n.uid, n.gid, n.mtime, n.xattrs
}

// newInode converts an entry to an inode, applying the owner and mtime
// options.
func (w *Writer) newInode(e Entry) (*inode, error) {
	typ, err := typeOf(e.Mode)
	if err != nil {
		return nil, err
	}
	ino := &inode{typ: typ, perm: permOf(e.Mode), uid: e.UID, gid: e.GID, mtime: clampTime(e.ModTime)}
	if w.opts.AllRoot {
		ino.uid, ino.gid = 0, 0
	}
	if w.opts.MapOwner != nil {
		ino.uid, ino.gid = w.opts.MapOwner(ino.uid, ino.gid)
	}
	if ep := clampTime(w.opts.Epoch); !w.opts.Epoch.IsZero() && ino.mtime > ep {
		ino.mtime = ep
	}
	w.newest = max(w.newest, ino.mtime)
	var skipped int
	ino.xattrs, skipped = convertXattrs(e.Xattrs)
	w.skipped += skipped
	if err := checkXattrs(ino.xattrs); err != nil {
		return nil, err
	}
	switch typ {
	case typeDir:
		ino.kids = map[string]*inode{}
	case typeFile:
		if e.Size < 0 {
			return nil, fmt.Errorf("negative size %d", e.Size)
		}
		ino.file = &fileData{size: e.Size, frag: invalidFrag}
	case typeSymlink:
		if e.Linkname == "" || len(e.Linkname) > maxSymlinkLen {
			return nil, fmt.Errorf("symlink target of %d bytes (want 1 to %d)", len(e.Linkname), maxSymlinkLen)
		}
		ino.target = e.Linkname
	case typeBlock, typeChar:
		if e.Major > 0xfff || e.Minor > 0xfffff {
			return nil, fmt.Errorf("device %d:%d out of range (12-bit major, 20-bit minor)", e.Major, e.Minor)
		}
		ino.rdev = encodeDev(e.Major, e.Minor)
	}
	return ino, nil
}

// parentOf returns the directory that holds the last component of parts,
// creating missing directories.
func (w *Writer) parentOf(parts []string) (*inode, error) {
	d := w.root
	for i, name := range parts[:len(parts)-1] {
		c, ok := d.kids[name]
		if !ok {
			c = w.newDir()
			d.kids[name] = c
		}
		if c.typ != typeDir {
			return nil, fmt.Errorf("%s is not a directory", strings.Join(parts[:i+1], "/"))
		}
		d = c
	}
	return d, nil
}

// lookup returns the inode at parts, or nil.
func (w *Writer) lookup(parts []string) *inode {
	d := w.root
	for _, name := range parts {
		if d.kids == nil {
			return nil
		}
		if d = d.kids[name]; d == nil {
			return nil
		}
	}
	return d
}

// addLink makes parts another name of the inode at target.
func (w *Writer) addLink(parts []string, target string) error {
	tparts, err := splitPath(target)
	if err != nil {
		return err
	}
	ino := w.lookup(tparts)
	switch {
	case ino == nil:
		return fmt.Errorf("hard link target %s: %w", target, fs.ErrNotExist)
	case ino.typ == typeDir:
		return fmt.Errorf("hard link target %s is a directory", target)
	case len(parts) == 0:
		return errors.New("the root cannot be a hard link")
	}
	parent, err := w.parentOf(parts)
	if err != nil {
		return err
	}
	parent.kids[parts[len(parts)-1]] = ino
	return nil
}

// Remove deletes the entry at p and everything below it (an OCI
// whiteout). A missing entry is an error wrapping fs.ErrNotExist. Content
// already written for it stays in the image, unreferenced.
func (w *Writer) Remove(p string) error {
	parts, err := splitPath(p)
	if err != nil {
		return fmt.Errorf("squashfs: remove %s: %w", p, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("squashfs: remove %s: the root cannot be removed", p)
	}
	d := w.lookup(parts[:len(parts)-1])
	if d == nil || d.kids == nil || d.kids[parts[len(parts)-1]] == nil {
		return fmt.Errorf("squashfs: remove %s: %w", p, fs.ErrNotExist)
	}
	delete(d.kids, parts[len(parts)-1])
	return nil
}

// fail records a sticky error.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}
