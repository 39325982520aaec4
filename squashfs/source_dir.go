package squashfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// AddDir adds the tree below the directory root (root itself becomes the
// image root): every directory, regular file, symlink, device, fifo and
// socket, with owner, mode, mtime and, on Linux, extended attributes and
// hard links (files sharing an inode become one inode). Entries are
// visited in byte order of their names, so the image does not depend on
// the order the file system lists them in. Nothing is copied to a
// temporary place: content streams from the files into the compressors.
func (w *Writer) AddDir(root string) error { return w.AddDirAt(root, "", nil) }

// AddDirAt adds the tree below the directory root as the image directory
// at (a slash-separated path; "" is the image root), like AddDir. skip,
// when not nil, is called with each path relative to root (slash
// separated, "." for root itself) and its FileInfo: returning true leaves
// it out, with everything below it.
func (w *Writer) AddDirAt(root, at string, skip func(rel string, fi fs.FileInfo) bool) error {
	fi, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("squashfs: %s is not a directory", root)
	}
	parts, err := splitPath(at)
	if err != nil {
		return fmt.Errorf("squashfs: add %s: %w", at, err)
	}
	d := dirSource{w: w, root: root, at: path.Join(parts...), skip: skip, links: map[fileID]string{}}
	if skip != nil && skip(".", fi) {
		return nil
	}
	if err := d.add("", fi); err != nil {
		return err
	}
	return d.walk("")
}

// dirSource walks a host directory.
type dirSource struct {
	w     *Writer
	root  string
	at    string // image path of root
	skip  func(string, fs.FileInfo) bool
	links map[fileID]string // inode -> first image path, for hard links
}

// fileID identifies a host inode.
type fileID struct{ dev, ino uint64 }

// walk adds the children of the image directory rel, depth first.
func (d *dirSource) walk(rel string) error {
	des, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(rel)))
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	for _, de := range des { // sorted by name
		p := path.Join(rel, de.Name())
		fi, err := de.Info()
		if err != nil {
			return fmt.Errorf("squashfs: %w", err)
		}
		if d.skip != nil && d.skip(p, fi) {
			continue
		}
		if err := d.add(p, fi); err != nil {
			return err
		}
		if fi.IsDir() {
			if err := d.walk(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// add adds one host file at path p relative to the root.
func (d *dirSource) add(p string, fi fs.FileInfo) error {
	host := filepath.Join(d.root, filepath.FromSlash(p))
	e, id, nlink, err := hostEntry(host, path.Join(d.at, p), fi)
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	if nlink > 1 && !fi.IsDir() {
		if first, ok := d.links[id]; ok {
			return d.w.Add(Entry{Path: e.Path, HardLink: first}, nil)
		}
		d.links[id] = e.Path
	}
	if !fi.Mode().IsRegular() {
		return d.w.Add(e, nil)
	}
	f, err := os.Open(host)
	if err != nil {
		return fmt.Errorf("squashfs: %w", err)
	}
	defer f.Close()
	return d.w.Add(e, f)
}

// baseEntry fills what any fs.FileInfo knows.
func baseEntry(p string, fi fs.FileInfo) Entry {
	e := Entry{Path: p, Mode: fi.Mode(), ModTime: fi.ModTime()}
	if fi.Mode().IsRegular() {
		e.Size = fi.Size()
	}
	return e
}
