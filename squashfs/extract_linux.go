package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// NoOwners skips chown (it is skipped anyway when not running as root).
	NoOwners bool
	// NoXattrs skips extended attributes.
	NoXattrs bool
}

// Extract writes the image's tree into dir (created if missing; it must
// not hold any name the image has): content, modes, owners (as root),
// mtimes, extended attributes, symlinks, devices, fifos, sockets and hard
// links. Entries are created exclusively and never through a symlink, so
// a hostile image cannot write outside dir.
func (r *Reader) Extract(ctx context.Context, dir string, opts ExtractOptions) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("squashfs: extract: %w", err)
	}
	x := extractor{r: r, dir: dir, opts: opts, links: map[uint64]string{}, root: os.Geteuid() == 0}
	err := r.Walk(func(p string, in *Inode) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return x.create(p, in)
	})
	if err != nil {
		return err
	}
	// Directory attributes last, deepest first: creating entries changes
	// a directory's mtime, and a read-only directory takes no entries.
	for _, d := range slices.Backward(x.dirs) {
		if err := x.attrs(d.path, d.in); err != nil {
			return err
		}
	}
	return nil
}

type extractor struct {
	r     *Reader
	dir   string
	opts  ExtractOptions
	links map[uint64]string // inode ref -> first host path
	dirs  []extractedDir
	root  bool
}

type extractedDir struct {
	path string
	in   *Inode
}

// create makes one entry at image path p.
func (x *extractor) create(p string, in *Inode) error {
	host := filepath.Join(x.dir, filepath.FromSlash(p))
	if in.IsDir() {
		if p != "." {
			if err := os.Mkdir(host, 0o700); err != nil {
				return fmt.Errorf("squashfs: extract: %w", err)
			}
		}
		x.dirs = append(x.dirs, extractedDir{host, in})
		return nil
	}
	if in.Nlink > 1 {
		if first, ok := x.links[in.Ref]; ok {
			if err := os.Link(first, host); err != nil {
				return fmt.Errorf("squashfs: extract: %w", err)
			}
			return nil
		}
		x.links[in.Ref] = host
	}
	if err := x.make(host, in); err != nil {
		return fmt.Errorf("squashfs: extract %s: %w", p, err)
	}
	return x.attrs(host, in)
}

// make creates a non-directory node.
func (x *extractor) make(host string, in *Inode) error {
	switch in.basicType() {
	case typeFile:
		return x.writeFile(host, in)
	case typeSymlink:
		return os.Symlink(in.Target, host)
	case typeBlock:
		return unix.Mknod(host, unix.S_IFBLK|0o600, int(unix.Mkdev(in.Major, in.Minor)))
	case typeChar:
		return unix.Mknod(host, unix.S_IFCHR|0o600, int(unix.Mkdev(in.Major, in.Minor)))
	case typeFifo:
		return unix.Mkfifo(host, 0o600)
	}
	return unix.Mknod(host, unix.S_IFSOCK|0o600, 0)
}

func (x *extractor) writeFile(host string, in *Inode) error {
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	c, err := x.r.newContentReader(in)
	if err == nil {
		_, err = io.Copy(f, c)
	}
	return errors.Join(err, f.Close())
}

// attrs applies owner, mode, xattrs and mtime, in the order that keeps
// setuid bits (chown clears them) and mtimes (written last).
func (x *extractor) attrs(host string, in *Inode) error {
	sym := in.basicType() == typeSymlink
	if x.root && !x.opts.NoOwners {
		if err := os.Lchown(host, int(in.UID), int(in.GID)); err != nil {
			return fmt.Errorf("squashfs: extract: %w", err)
		}
	}
	if !sym {
		if err := os.Chmod(host, in.Mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return fmt.Errorf("squashfs: extract: %w", err)
		}
	}
	if !x.opts.NoXattrs {
		xs, err := x.r.Xattrs(in)
		if err != nil {
			return err
		}
		for k, v := range xs {
			if err := unix.Lsetxattr(host, k, []byte(v), 0); err != nil {
				return fmt.Errorf("squashfs: extract: set xattr %s on %s: %w", k, host, err)
			}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(in.ModTime.UnixNano()), unix.NsecToTimespec(in.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("squashfs: extract: set mtime of %s: %w", host, err)
	}
	return nil
}
