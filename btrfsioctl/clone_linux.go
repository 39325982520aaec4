package btrfsioctl

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Clone makes dst share all of src's data extents (FICLONE, a reflink
// copy); both must be regular files on the same btrfs (or other reflink
// capable) filesystem, dst opened for writing.
func Clone(dst, src *os.File) error {
	err := control(dst, src, func(dfd, sfd int) error { return unix.IoctlFileClone(dfd, sfd) })
	if err != nil {
		return &os.PathError{Op: "clone file", Path: dst.Name(), Err: os.NewSyscallError("ioctl(FICLONE)", err)}
	}
	return nil
}

// CloneRange makes length bytes of dst at dstOffset share the extents of
// src at srcOffset (FICLONERANGE); offsets and length must be multiples of
// the filesystem block size, except that length 0 means "to the end of
// src" and a range may end at src's end.
func CloneRange(dst, src *os.File, srcOffset, length, dstOffset uint64) error {
	err := control(dst, src, func(dfd, sfd int) error {
		return unix.IoctlFileCloneRange(dfd, &unix.FileCloneRange{
			Src_fd: int64(sfd), Src_offset: srcOffset, Src_length: length, Dest_offset: dstOffset,
		})
	})
	if err != nil {
		return &os.PathError{Op: "clone file range", Path: dst.Name(), Err: os.NewSyscallError("ioctl(FICLONERANGE)", err)}
	}
	return nil
}

// control runs fn with the raw descriptors of dst and src, keeping both
// files alive for the call.
func control(dst, src *os.File, fn func(dfd, sfd int) error) error {
	dc, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	sc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	cerr := dc.Control(func(d uintptr) {
		if e := sc.Control(func(s uintptr) { ferr = fn(int(d), int(s)) }); e != nil {
			ferr = e
		}
	})
	runtime.KeepAlive(dst)
	runtime.KeepAlive(src)
	if cerr != nil {
		return cerr
	}
	return ferr
}
