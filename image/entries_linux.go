package image

import (
	"archive/tar"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// regular writes a regular file: small ones through the worker pool, big
// ones streamed here.
func (a *applier) regular(parent int, base, p string, hdr *tar.Header, r io.Reader) error {
	if hdr.Size < 0 || hdr.Size > a.budget.lim.MaxFileSize {
		return fmt.Errorf("apply layer: entry %q: %w: size %d over %d", p, ErrLimit, hdr.Size, a.budget.lim.MaxFileSize)
	}
	a.stats.Files++
	a.stats.Bytes += hdr.Size
	if hdr.Size > smallFile {
		return a.bigFile(parent, base, p, hdr, r)
	}
	var buf *[]byte
	var data []byte
	if hdr.Size <= 64<<10 {
		buf = bufPool.Get().(*[]byte)
		data = (*buf)[:hdr.Size]
	} else {
		data = make([]byte, hdr.Size)
	}
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("apply layer: entry %q: read content: %w", p, err)
	}
	a.mu.Lock()
	a.pending[p] = struct{}{}
	a.mu.Unlock()
	a.inflight.Add(1)
	a.jobs <- fileJob{dirfd: parent, base: base, path: p, hdr: hdr, fast: a.skippable(parent, hdr), data: data, buf: buf}
	return nil
}

func (a *applier) work() {
	defer a.workers.Done()
	for j := range a.jobs {
		err := a.writeFile(j.dirfd, j.base, j.path, j.hdr, j.fast, func(fd int) error {
			sw := sparseWriter{fd: fd}
			if err := sw.write(j.data); err != nil {
				return err
			}
			return sw.finish(j.hdr.Size)
		})
		if j.buf != nil {
			bufPool.Put(j.buf)
		}
		a.mu.Lock()
		delete(a.pending, j.path)
		if err != nil && a.err == nil {
			a.err = err
		}
		a.mu.Unlock()
		a.inflight.Done()
	}
}

func (a *applier) bigFile(parent int, base, p string, hdr *tar.Header, r io.Reader) error {
	buf := make([]byte, smallFile)
	return a.writeFile(parent, base, p, hdr, a.skippable(parent, hdr), func(fd int) error {
		sw := sparseWriter{fd: fd}
		for left := hdr.Size; left > 0; {
			if err := a.ctx.Err(); err != nil {
				return err
			}
			n, err := io.ReadFull(r, buf[:min(left, int64(len(buf)))])
			if err != nil {
				return fmt.Errorf("read content: %w", err)
			}
			if err := sw.write(buf[:n]); err != nil {
				return err
			}
			left -= int64(n)
		}
		return sw.finish(hdr.Size)
	})
}

// writeFile creates base in parent exclusively (replacing what was there),
// fills it with fill and sets its metadata.
func (a *applier) writeFile(parent int, base, p string, hdr *tar.Header, fast metaSkip, fill func(fd int) error) error {
	var fd int
	mode := uint32(0o600)
	if fast.chmod {
		mode = uint32(hdr.Mode & 0o777)
	}
	err := retryExist(parent, base, func() (err error) {
		fd, err = unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		return err
	})
	if err != nil {
		return fmt.Errorf("apply layer: create %q: %w", p, err)
	}
	defer unix.Close(fd)
	if err := fill(fd); err != nil {
		return fmt.Errorf("apply layer: write %q: %w", p, err)
	}
	return a.setMetaFD(fd, p, hdr, fast)
}

// metaSkip says which metadata calls a new regular file does not need.
type metaSkip struct {
	chown bool // created with the wanted owner already
	chmod bool // created with the wanted mode already (umask permitting)
}

// skippable decides which calls a new file in parent can skip: chown when
// it is owned by our fsuid/fsgid and the parent is not set-group-ID;
// chmod when the mode has no set-id/sticky bits and survives the umask.
func (a *applier) skippable(parent int, hdr *tar.Header) metaSkip {
	return metaSkip{
		chown: hdr.Uid == euid && hdr.Gid == egid && !a.sgid[parent],
		chmod: hdr.Mode&0o7000 == 0 && uint32(hdr.Mode)&0o777&umask() == 0,
	}
}

// setMetaFD sets owner, mode, xattrs and times of an open file or
// directory, in that order: chown clears set-id bits and capabilities.
func (a *applier) setMetaFD(fd int, p string, hdr *tar.Header, skip metaSkip) error {
	xattrs, err := a.xattrs(hdr, p)
	if err != nil {
		return err
	}
	if !skip.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("apply layer: chown %q: %w", p, err)
		}
	}
	if !skip.chmod {
		if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("apply layer: chmod %q: %w", p, err)
		}
	}
	for _, x := range xattrs {
		if err := unix.Fsetxattr(fd, x[0], []byte(x[1]), 0); err != nil {
			return fmt.Errorf("apply layer: set xattr %s on %q: %w", x[0], p, err)
		}
	}
	ts := timespecs(hdr.ModTime)
	if err := futimens(fd, &ts); err != nil {
		return fmt.Errorf("apply layer: set times of %q: %w", p, err)
	}
	return nil
}

// setMetaAt sets owner, mode (unless a symlink), xattrs and times of a
// non-regular entry by name, never following it.
func (a *applier) setMetaAt(parent int, base, p string, hdr *tar.Header, isLink bool) error {
	xattrs, err := a.xattrs(hdr, p)
	if err != nil {
		return err
	}
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("apply layer: chown %q: %w", p, err)
	}
	if !isLink {
		if err := chmodNoFollow(parent, base, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("apply layer: chmod %q: %w", p, err)
		}
	}
	for _, x := range xattrs {
		if err := unix.Lsetxattr(procPath(parent, base), x[0], []byte(x[1]), 0); err != nil {
			return fmt.Errorf("apply layer: set xattr %s on %q: %w", x[0], p, err)
		}
	}
	ts := timespecs(hdr.ModTime)
	if err := unix.UtimesNanoAt(parent, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("apply layer: set times of %q: %w", p, err)
	}
	return nil
}

func (a *applier) mkdir(parent int, base, p string, hdr *tar.Header) error {
	a.stats.Dirs++
	err := unix.Mkdirat(parent, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = retryExist(parent, base, func() error { return unix.Mkdirat(parent, base, 0o700) })
		}
	}
	if err != nil {
		return fmt.Errorf("apply layer: mkdir %q: %w", p, err)
	}
	// A directory listed twice gets the metadata of its last entry.
	if i, ok := a.dirIdx[p]; ok {
		a.dirMeta[i].hdr = hdr
		return nil
	}
	a.dirIdx[p] = len(a.dirMeta)
	a.dirMeta = append(a.dirMeta, dirEntry{p, hdr})
	return nil
}

func (a *applier) symlink(parent int, base, p string, hdr *tar.Header) error {
	a.stats.Symlinks++
	if hdr.Linkname == "" || len(hdr.Linkname) >= maxPathLen {
		return fmt.Errorf("apply layer: symlink %q: target of %d bytes", p, len(hdr.Linkname))
	}
	err := retryExist(parent, base, func() error { return unix.Symlinkat(hdr.Linkname, parent, base) })
	if err != nil {
		return fmt.Errorf("apply layer: symlink %q: %w", p, err)
	}
	return a.setMetaAt(parent, base, p, hdr, true)
}

func (a *applier) hardlink(parent int, base, p string, hdr *tar.Header) error {
	a.stats.Hardlinks++
	target, err := CleanPath(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("apply layer: hard link %q: target: %w", p, err)
	}
	if target == "" || target == p {
		return fmt.Errorf("apply layer: hard link %q: %w: target %q", p, ErrUnsafePath, hdr.Linkname)
	}
	if a.isPending(target) {
		if err := a.barrier(); err != nil {
			return err
		}
	}
	tdir, tbase := splitPath(target)
	tfd, err := a.dirFD(tdir)
	if err != nil {
		return fmt.Errorf("apply layer: hard link %q: target directory: %w", p, err)
	}
	err = retryExist(parent, base, func() error { return unix.Linkat(tfd, tbase, parent, base, 0) })
	if err != nil {
		return fmt.Errorf("apply layer: hard link %q to %q: %w", p, target, err)
	}
	return nil
}

func (a *applier) mknod(parent int, base, p string, hdr *tar.Header) error {
	a.stats.Devices++
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	err := retryExist(parent, base, func() error { return unix.Mknodat(parent, base, mode, int(dev)) })
	if err != nil {
		return fmt.Errorf("apply layer: mknod %q: %w", p, err)
	}
	return a.setMetaAt(parent, base, p, hdr, false)
}
