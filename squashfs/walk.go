package squashfs

import (
	"fmt"
	"io"
	"path"
)

// Walk calls fn for every inode of the image, depth first: the root as
// ".", each directory before its entries, entries in byte order. A
// directory reached twice (a loop in the directory tables) is an error,
// so Walk always ends. An error from fn stops the walk and is returned.
func (r *Reader) Walk(fn func(p string, in *Inode) error) error { return r.WalkFrom(".", fn) }

// WalkFrom is Walk from the fs.FS path start (a final symlink is not
// followed): fn gets start itself, then, for a directory, everything
// below it, with paths that begin with start.
func (r *Reader) WalkFrom(start string, fn func(p string, in *Inode) error) error {
	in, err := r.resolve("walk", start, false)
	if err != nil {
		return err
	}
	seen := map[uint64]bool{in.Ref: true}
	if err := fn(start, in); err != nil || !in.IsDir() {
		return err
	}
	return r.walkDir(start, in, seen, fn)
}

func (r *Reader) walkDir(dir string, in *Inode, seen map[uint64]bool, fn func(string, *Inode) error) error {
	ents, err := r.readDir(in)
	if err != nil {
		return fmt.Errorf("squashfs: %s: %w", dir, err)
	}
	for _, e := range ents {
		p := path.Join(dir, e.name)
		child, err := r.entryInode(e)
		if err != nil {
			return fmt.Errorf("squashfs: %s: %w", p, err)
		}
		if child.IsDir() {
			if seen[child.Ref] {
				return corrupt("%s: directory inode %#x is reached twice (a loop in the directory tables)", p, child.Ref)
			}
			seen[child.Ref] = true
		}
		if err := fn(p, child); err != nil {
			return err
		}
		if child.IsDir() {
			if err := r.walkDir(p, child, seen, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// Content returns a reader of a regular file inode's content.
func (r *Reader) Content(in *Inode) (io.Reader, error) {
	c, err := r.newContentReader(in)
	if err != nil {
		return nil, err
	}
	return c, nil
}
