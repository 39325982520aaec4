package squashfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// materialize creates a test tree on the host (devices, owners and
// trusted/security xattrs need root). Directories get their attributes
// last, deepest first.
func materialize(t testing.TB, dir string, nodes []tnode) {
	t.Helper()
	var dirs []tnode
	for _, n := range nodes {
		p := filepath.Join(dir, n.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if n.Link != "" {
			if err := os.Link(filepath.Join(dir, n.Link), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if n.Mode.IsDir() {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, n)
			continue
		}
		if err := makeNode(p, n); err != nil {
			t.Fatalf("create %s: %v", n.Path, err)
		}
		setAttrs(t, p, n)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i].Path, "/") > strings.Count(dirs[j].Path, "/") })
	for _, n := range dirs {
		setAttrs(t, filepath.Join(dir, n.Path), n)
	}
}

func makeNode(p string, n tnode) error {
	switch {
	case n.Mode&fs.ModeSymlink != 0:
		return os.Symlink(n.Target, p)
	case n.Mode&fs.ModeDevice != 0:
		typ := uint32(unix.S_IFBLK)
		if n.Mode&fs.ModeCharDevice != 0 {
			typ = unix.S_IFCHR
		}
		return unix.Mknod(p, typ|0o600, int(unix.Mkdev(n.Major, n.Minor)))
	case n.Mode&fs.ModeNamedPipe != 0:
		return unix.Mkfifo(p, 0o600)
	case n.Mode&fs.ModeSocket != 0:
		return unix.Mknod(p, unix.S_IFSOCK|0o600, 0)
	}
	return os.WriteFile(p, []byte(n.Data), 0o600)
}

func setAttrs(t testing.TB, p string, n tnode) {
	t.Helper()
	if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
		t.Fatal(err)
	}
	if n.Mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(p, n.Mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range n.Xattrs {
		if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
			t.Fatalf("setxattr %s %s: %v", p, k, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.Mtime * 1e9), unix.NsecToTimespec(n.Mtime * 1e9)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// scanHost reads a host tree into the form readBack returns (paths
// relative to dir, "." for dir itself).
func scanHost(t testing.TB, dir string) map[string]tnode {
	t.Helper()
	got := map[string]tnode{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := tnode{Path: filepath.ToSlash(rel), Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, Mtime: fi.ModTime().Unix()}
		if !fi.IsDir() {
			n.Nlink = uint32(st.Nlink)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Data = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Target, _ = os.Readlink(p)
		case fi.Mode()&fs.ModeDevice != 0:
			n.Major, n.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		}
		if n.Xattrs, err = hostXattrs(p); err != nil {
			return err
		}
		got[n.Path] = n
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	return got
}

// dropUnsupported removes what a host tree holds that squashfs cannot:
// xattr namespaces other than user/trusted/security.
func dropUnsupported(m map[string]tnode) {
	for p, n := range m {
		for k := range n.Xattrs {
			if _, ok := prefixOf(k); !ok {
				delete(n.Xattrs, k)
			}
		}
		m[p] = n
	}
}

// kernelHasSquashfs reports whether the running kernel mounts squashfs.
func kernelHasSquashfs() bool {
	b, err := os.ReadFile("/proc/filesystems")
	return err == nil && strings.Contains(string(b), "squashfs")
}

func itoa(n int) string { return strconv.Itoa(n) }
