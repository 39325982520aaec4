package image

import (
	"archive/tar"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// srcEntry is one file of a directory being imported.
type srcEntry struct {
	rel string
	st  syscall.Stat_t
}

// readDirSource feeds the tree under root (ending in "/") to e: first a
// walk collects the entries in name order (so the total is known), then
// each is read and written.
func readDirSource(root string, e *emitter) error {
	ents, total, err := walkRoot(root)
	if err != nil {
		return err
	}
	links := map[[2]uint64]string{} // (dev, ino) -> first path
	var read int64
	e.progress(0, total)
	for _, s := range ents {
		hdr, err := dirHeader(root, s, links)
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			if err := e.emit(hdr, nil); err != nil {
				return err
			}
			continue
		}
		if err := emitFile(e, root+s.rel, hdr); err != nil {
			return err
		}
		read += hdr.Size
		e.progress(read, total)
	}
	return nil
}

// walkRoot lists the tree under root sorted by name, without crossing
// into other filesystems (a mount point itself is listed, empty) and
// without sockets, which tar cannot hold. total is the size of the
// regular files.
func walkRoot(root string) ([]srcEntry, int64, error) {
	var rootSt syscall.Stat_t
	if err := syscall.Lstat(root, &rootSt); err != nil {
		return nil, 0, &os.PathError{Op: "lstat", Path: root, Err: err}
	}
	var ents []srcEntry
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == strings.TrimSuffix(root, "/") || p == root {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := *fi.Sys().(*syscall.Stat_t)
		if st.Mode&syscall.S_IFMT == syscall.S_IFSOCK {
			return nil
		}
		ents = append(ents, srcEntry{rel: strings.TrimPrefix(p, root), st: st})
		if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			total += st.Size
		}
		if d.IsDir() && st.Dev != rootSt.Dev {
			return filepath.SkipDir
		}
		return nil
	})
	return ents, total, err
}

// dirHeader builds the tar header of one file; files sharing an inode
// after the first become hard links to it.
func dirHeader(root string, s srcEntry, links map[[2]uint64]string) (*tar.Header, error) {
	st := &s.st
	h := &tar.Header{Name: s.rel, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				h.Typeflag, h.Size, h.Linkname = tar.TypeLink, 0, first
				return h, nil
			}
			links[key] = s.rel
		}
	case syscall.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case syscall.S_IFLNK:
		target, err := os.Readlink(root + s.rel)
		if err != nil {
			return nil, err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case syscall.S_IFCHR, syscall.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case syscall.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("%s: unsupported file type %#o", s.rel, st.Mode&syscall.S_IFMT)
	}
	x, err := listXattrs(root + s.rel)
	if err != nil {
		return nil, err
	}
	for k, v := range x {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return h, nil
}

// emitFile writes a regular file's header and content.
func emitFile(e *emitter, p string, hdr *tar.Header) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if err != nil {
		// O_NOATIME needs ownership or CAP_FOWNER.
		f, err = os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return e.emit(hdr, f)
}

// listXattrs returns the extended attributes of p (not following it).
func listXattrs(p string) (map[string]string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ERANGE {
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if err == unix.ENOTSUP || n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		sz, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(p, name, v); err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		out[name] = string(v[:sz])
	}
	return out, nil
}
