package squashfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// hostEntry describes a host file: owner, device numbers and extended
// attributes from lstat(2) and llistxattr(2).
func hostEntry(host, p string, fi fs.FileInfo) (Entry, fileID, uint64, error) {
	e := baseEntry(p, fi)
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return e, fileID{}, 1, nil
	}
	e.UID, e.GID = st.Uid, st.Gid
	if fi.Mode()&fs.ModeDevice != 0 {
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(host)
		if err != nil {
			return e, fileID{}, 0, err
		}
		e.Linkname = t
	}
	x, err := hostXattrs(host)
	if err != nil {
		return e, fileID{}, 0, err
	}
	e.Xattrs = x
	return e, fileID{uint64(st.Dev), st.Ino}, uint64(st.Nlink), nil
}

// hostXattrs reads a file's extended attributes (not following symlinks).
// A file system without xattr support has none.
func hostXattrs(host string) (map[string]string, error) {
	n, err := unix.Llistxattr(host, nil) // the size: most files have none
	switch {
	case errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case err != nil:
		return nil, &os.PathError{Op: "llistxattr", Path: host, Err: err}
	case n == 0:
		return nil, nil
	}
	buf := make([]byte, max(n, 256))
	for {
		n, err := unix.Llistxattr(host, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: host, Err: err}
		}
		return readXattrs(host, strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00"))
	}
}

func readXattrs(host string, names []string) (map[string]string, error) {
	var m map[string]string
	for _, name := range names {
		if name == "" {
			continue
		}
		v, err := getXattr(host, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = v
	}
	return m, nil
}

func getXattr(host, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(host, name, buf)
		if errors.Is(err, unix.ERANGE) {
			if len(buf) > 64<<20 {
				return "", fmt.Errorf("xattr %s of %s too large", name, host)
			}
			buf = make([]byte, 4*len(buf))
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: host, Err: err}
		}
		return string(buf[:n]), nil
	}
}

// statOwner returns the owner of an fs.FileInfo backed by stat(2).
func statOwner(fi fs.FileInfo) (uid, gid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return st.Uid, st.Gid, true
}
