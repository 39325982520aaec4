package squashfs

import (
	"fmt"
	"io/fs"
	"math"
	"path"
	"strings"
	"time"
)

// Entry describes one file system object given to Writer.Add. The three
// inputs (a directory tree, an fs.FS and a tar stream) are all turned into
// a stream of Entry values; a caller with another source (OCI layers)
// builds its own.
type Entry struct {
	// Path is slash-separated and relative to the image root ("usr/bin");
	// a leading "/" or "./" is ignored; "", "." and "/" name the root
	// directory. ".." components are refused.
	Path string
	// Mode is the type (0 for a regular file, fs.ModeDir, fs.ModeSymlink,
	// fs.ModeDevice, fs.ModeDevice|fs.ModeCharDevice, fs.ModeNamedPipe,
	// fs.ModeSocket) and the permission bits, with fs.ModeSetuid,
	// fs.ModeSetgid and fs.ModeSticky.
	Mode     fs.FileMode
	UID, GID uint32
	ModTime  time.Time
	// Size is a regular file's length: its content reader must yield
	// exactly Size bytes.
	Size int64
	// Linkname is a symbolic link's target.
	Linkname string
	// HardLink, when set, makes Path another name of this earlier entry
	// (not a directory); every other field is then ignored.
	HardLink string
	// Major and Minor are a device's numbers.
	Major, Minor uint32
	// Xattrs maps "user.*", "trusted.*" and "security.*" names to values.
	// Other namespaces cannot be stored in squashfs: they are skipped and
	// counted in Result.SkippedXattrs.
	Xattrs map[string]string
}

// inode is one file system object of the image being built. Directory
// entries point at inodes; hard links share one.
type inode struct {
	typ      uint16 // basic type (typeDir...typeSocket)
	perm     uint16
	uid, gid uint32
	mtime    uint32
	xattrs   []xattr
	target   string
	rdev     uint32
	kids     map[string]*inode // directories
	file     *fileData         // regular files

	// Set by Finish.
	nlink    uint32
	number   uint32
	ref      uint64
	written  bool
	xattrIdx uint32
}

// fileData is where a regular file's content went. The producer (Add)
// sets size and the fragment fields; the ordered writer sets start,
// blocks and sparse; Finish reads them once both are done.
type fileData struct {
	size    int64
	frag    uint32
	fragOff uint32
	start   uint64
	blocks  []uint32
	sparse  int64
}

// typeOf maps an entry mode to a basic inode type.
func typeOf(m fs.FileMode) (uint16, error) {
	switch {
	case m&fs.ModeDir != 0:
		return typeDir, nil
	case m&fs.ModeSymlink != 0:
		return typeSymlink, nil
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return typeChar, nil
	case m&fs.ModeDevice != 0:
		return typeBlock, nil
	case m&fs.ModeNamedPipe != 0:
		return typeFifo, nil
	case m&fs.ModeSocket != 0:
		return typeSocket, nil
	case m&fs.ModeType == 0:
		return typeFile, nil
	}
	return 0, fmt.Errorf("unsupported file type %v", m.Type())
}

// permOf packs permission bits the way stat(2) does.
func permOf(m fs.FileMode) uint16 {
	p := uint16(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// splitPath cleans an entry path into its components; the root is none.
func splitPath(p string) ([]string, error) {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return nil, nil
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return nil, fmt.Errorf("path %q: \"..\" is not allowed", p)
		}
	}
	clean := path.Clean(p)
	if clean == "." {
		return nil, nil
	}
	parts := strings.Split(clean, "/")
	for _, c := range parts {
		if len(c) > maxNameLen {
			return nil, fmt.Errorf("path %q: name of %d bytes exceeds %d", p, len(c), maxNameLen)
		}
		if strings.IndexByte(c, 0) >= 0 {
			return nil, fmt.Errorf("path %q: name contains a NUL byte", p)
		}
	}
	return parts, nil
}

// clampTime converts a time to the u32 seconds squashfs stores.
func clampTime(t time.Time) uint32 {
	s := t.Unix()
	if t.IsZero() || s < 0 {
		return 0
	}
	return uint32(min(s, math.MaxUint32))
}
