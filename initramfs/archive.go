package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"initos/cpio"
)

// Archive collects the entries of an initramfs and writes them as one
// deterministic newc archive. The zero value is an empty archive.
//
// Names are slash-separated paths inside the archive; a leading "/" is
// ignored ("/init" and "init" are the same entry). Parent directories are
// created (mode 0755) when missing. Adding a directory twice keeps the last
// mode; adding any other entry at an existing path, or under a
// non-directory, is an error reported by WriteTo.
//
// Every entry is owned by 0:0, carries the archive's modification time and
// an inode number given in write order: nothing of the host (owners,
// times, inode or device numbers) reaches the archive except, for
// AddHostFile, the file's contents and permission bits.
type Archive struct {
	// ModTime is the modification time of every entry. Zero means
	// $SOURCE_DATE_EPOCH if set, else the Unix epoch.
	ModTime time.Time

	entries map[string]*entry
	err     error // first error of an Add method, returned by WriteTo
}

// entry is one archive member before writing.
type entry struct {
	mode         uint32 // st_mode: cpio.Type* | permission bits
	data         []byte // file contents or symlink target
	host         string // AddHostFile: contents read from here by WriteTo
	major, minor uint32 // character devices
	implied      bool   // directory created for a child, not added
}

// AddDir adds a directory.
func (a *Archive) AddDir(name string, mode fs.FileMode) {
	a.add(name, &entry{mode: cpio.TypeDir | unixPerm(mode)})
}

// AddFile adds a regular file with the given contents (not copied: do not
// modify data before WriteTo).
func (a *Archive) AddFile(name string, mode fs.FileMode, data []byte) {
	a.add(name, &entry{mode: cpio.TypeReg | unixPerm(mode), data: data})
}

// AddHostFile adds the regular file (or symlink target) hostPath as name,
// with its permission bits. The file is checked now and its contents are
// read by WriteTo, so large trees are never held in memory; the file must
// not change size in between.
func (a *Archive) AddHostFile(name, hostPath string) error {
	fi, err := os.Stat(hostPath)
	if err != nil {
		return fmt.Errorf("add host file %s: %w", hostPath, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("add host file %s: not a regular file (%s)", hostPath, fi.Mode().Type())
	}
	if fi.Size() > maxFileSize {
		return fmt.Errorf("add host file %s: %d bytes, newc holds at most %d", hostPath, fi.Size(), int64(maxFileSize))
	}
	a.add(name, &entry{mode: cpio.TypeReg | unixPerm(fi.Mode()), host: hostPath})
	return nil
}

// AddSymlink adds a symbolic link to target.
func (a *Archive) AddSymlink(name, target string) {
	if target == "" || len(target) >= cpio.MaxNameSize {
		a.fail(fmt.Errorf("add symlink %s: target length %d out of range [1, %d]", name, len(target), cpio.MaxNameSize-1))
		return
	}
	a.add(name, &entry{mode: cpio.TypeSymlink | 0o777, data: []byte(target)})
}

// AddCharDevice adds a character device node (e.g. "dev/console", 0600, 5, 1).
func (a *Archive) AddCharDevice(name string, mode fs.FileMode, major, minor uint32) {
	a.add(name, &entry{mode: cpio.TypeChar | unixPerm(mode), major: major, minor: minor})
}

// maxFileSize is the largest file newc can hold (c_filesize is 32 bits).
const maxFileSize = 1<<32 - 1

// unixPerm returns the permission and set-id/sticky bits of mode as st_mode bits.
func unixPerm(mode fs.FileMode) uint32 {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

func (a *Archive) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// cleanName returns the archive path of name: no leading "/", cleaned.
func cleanName(name string) (string, error) {
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", errors.New(`name contains ".."`)
		}
	}
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	switch {
	case n == "":
		return "", errors.New("name is the root directory")
	case len(n) >= cpio.MaxNameSize:
		return "", fmt.Errorf("name longer than %d bytes", cpio.MaxNameSize-1)
	case strings.IndexByte(n, 0) >= 0:
		return "", errors.New("name contains NUL")
	case n == cpio.Trailer:
		return "", errors.New("name is the cpio trailer's")
	}
	return n, nil
}

// add inserts e at name, creating missing parent directories.
func (a *Archive) add(name string, e *entry) {
	n, err := cleanName(name)
	if err != nil {
		a.fail(fmt.Errorf("add %q: %w", name, err))
		return
	}
	if a.entries == nil {
		a.entries = make(map[string]*entry)
	}
	for d := path.Dir(n); d != "."; d = path.Dir(d) {
		if p, ok := a.entries[d]; ok {
			if p.mode&cpio.TypeMask != cpio.TypeDir {
				a.fail(fmt.Errorf("add %s: parent %s is not a directory", n, d))
				return
			}
			continue
		}
		a.entries[d] = &entry{mode: cpio.TypeDir | 0o755, implied: true}
	}
	if old, ok := a.entries[n]; ok {
		if old.mode&cpio.TypeMask != cpio.TypeDir || e.mode&cpio.TypeMask != cpio.TypeDir {
			a.fail(fmt.Errorf("add %s: duplicate path", n))
			return
		}
	}
	a.entries[n] = e
}
