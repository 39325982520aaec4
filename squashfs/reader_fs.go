package squashfs

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"time"
)

var (
	_ fs.ReadDirFS  = (*Reader)(nil)
	_ fs.StatFS     = (*Reader)(nil)
	_ fs.ReadLinkFS = (*Reader)(nil)
)

// Open opens a file of the image (fs.FS), following symlinks inside the
// image. Directories implement fs.ReadDirFile; regular files stream their
// content.
func (r *Reader) Open(name string) (fs.File, error) {
	in, err := r.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	f := &file{r: r, info: fileInfo{name: path.Base(name), in: in}}
	if in.basicType() == typeFile {
		if f.content, err = r.newContentReader(in); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return f, nil
}

// Stat returns a file's FileInfo, following symlinks.
func (r *Reader) Stat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// Lstat returns a file's FileInfo without following a final symlink.
func (r *Reader) Lstat(name string) (fs.FileInfo, error) {
	in, err := r.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: path.Base(name), in: in}, nil
}

// ReadLink returns a symlink's target.
func (r *Reader) ReadLink(name string) (string, error) {
	in, err := r.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if in.basicType() != typeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: errors.New("not a symlink")}
	}
	return in.Target, nil
}

// ReadDir lists a directory, sorted by name.
func (r *Reader) ReadDir(name string) ([]fs.DirEntry, error) {
	in, err := r.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	return r.dirEntries("readdir", name, in)
}

func (r *Reader) dirEntries(op, name string, in *Inode) ([]fs.DirEntry, error) {
	ents, err := r.readDir(in)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		out[i] = dirEntryInfo{r: r, e: e}
	}
	return out, nil
}

// fileInfo is an fs.FileInfo of an image inode.
type fileInfo struct {
	name string
	in   *Inode
}

func (fi fileInfo) Name() string       { return fi.name }
func (fi fileInfo) Size() int64        { return fi.in.Size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.in.Mode }
func (fi fileInfo) ModTime() time.Time { return fi.in.ModTime }
func (fi fileInfo) IsDir() bool        { return fi.in.IsDir() }
func (fi fileInfo) Sys() any           { return fi.in }

// dirEntryInfo is an fs.DirEntry of a listing entry.
type dirEntryInfo struct {
	r *Reader
	e dirent
}

func (d dirEntryInfo) Name() string      { return d.e.name }
func (d dirEntryInfo) IsDir() bool       { return d.e.typ == typeDir }
func (d dirEntryInfo) Type() fs.FileMode { return typeModes[d.e.typ].Type() }
func (d dirEntryInfo) Info() (fs.FileInfo, error) {
	in, err := d.r.entryInode(d.e)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: d.e.name, in: in}, nil
}

// file is an open image file.
type file struct {
	r       *Reader
	info    fileInfo
	content *contentReader
	ents    []fs.DirEntry
	listed  bool
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

func (f *file) Read(p []byte) (int, error) {
	if f.content == nil {
		return 0, &fs.PathError{Op: "read", Path: f.info.name, Err: errors.New("not a regular file")}
	}
	return f.content.Read(p)
}

// ReadDir implements fs.ReadDirFile.
func (f *file) ReadDir(n int) ([]fs.DirEntry, error) {
	if !f.info.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: f.info.name, Err: errors.New("not a directory")}
	}
	if !f.listed {
		ents, err := f.r.dirEntries("readdir", f.info.name, f.info.in)
		if err != nil {
			return nil, err
		}
		f.ents, f.listed = ents, true
	}
	if n <= 0 {
		out := f.ents
		f.ents = nil
		return out, nil
	}
	if len(f.ents) == 0 {
		return nil, io.EOF
	}
	k := min(n, len(f.ents))
	out := f.ents[:k]
	f.ents = f.ents[k:]
	return out, nil
}
