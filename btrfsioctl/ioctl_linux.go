package btrfsioctl

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request encoding (include/uapi/asm-generic/ioctl.h): nr in bits
// 0-7, type in 8-15, size in 16-29, direction in 30-31. amd64, arm64 and
// riscv64 use this generic layout.
const (
	iocNRBits   = 8
	iocTypeBits = 8
	iocSizeBits = 14

	iocNRShift   = 0
	iocTypeShift = iocNRShift + iocNRBits
	iocSizeShift = iocTypeShift + iocTypeBits
	iocDirShift  = iocSizeShift + iocSizeBits

	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

func io_(nr uintptr) uintptr        { return ioc(iocNone, ioctlMagic, nr, 0) }
func ior(nr, size uintptr) uintptr  { return ioc(iocRead, ioctlMagic, nr, size) }
func iow(nr, size uintptr) uintptr  { return ioc(iocWrite, ioctlMagic, nr, size) }
func iowr(nr, size uintptr) uintptr { return ioc(iocRead|iocWrite, ioctlMagic, nr, size) }
func sizeOf[T any]() uintptr        { var v T; return unsafe.Sizeof(v) }

// ioctlMagic is BTRFS_IOCTL_MAGIC.
const ioctlMagic = 0x94

// request is one btrfs ioctl: its number and the name used in errors.
type request struct {
	nr   uintptr
	name string
}

// The btrfs ioctls used by this package (include/uapi/linux/btrfs.h).
var (
	iocSync           = request{io_(8), "BTRFS_IOC_SYNC"}
	iocSnapDestroy    = request{iow(15, sizeOf[volArgs]()), "BTRFS_IOC_SNAP_DESTROY"}
	iocTreeSearch     = request{iowr(17, sizeOf[searchArgs]()), "BTRFS_IOC_TREE_SEARCH"}
	iocInoLookup      = request{iowr(18, sizeOf[inoLookupArgs]()), "BTRFS_IOC_INO_LOOKUP"}
	iocDefaultSubvol  = request{iow(19, sizeOf[uint64]()), "BTRFS_IOC_DEFAULT_SUBVOL"}
	iocSnapCreateV2   = request{iow(23, sizeOf[volArgsV2]()), "BTRFS_IOC_SNAP_CREATE_V2"}
	iocSubvolCreateV2 = request{iow(24, sizeOf[volArgsV2]()), "BTRFS_IOC_SUBVOL_CREATE_V2"}
	iocSubvolGetflags = request{ior(25, sizeOf[uint64]()), "BTRFS_IOC_SUBVOL_GETFLAGS"}
	iocSubvolSetflags = request{iow(26, sizeOf[uint64]()), "BTRFS_IOC_SUBVOL_SETFLAGS"}
	iocGetSubvolInfo  = request{ior(60, sizeOf[getSubvolInfoArgs]()), "BTRFS_IOC_GET_SUBVOL_INFO"}
	iocSnapDestroyV2  = request{iow(63, sizeOf[volArgsV2]()), "BTRFS_IOC_SNAP_DESTROY_V2"}
)

// ioctl is the single funnel for every btrfs ioctl: it issues req on f
// with arg (a pointer to the argument struct, or nil), keeps both alive for
// the duration of the call, and wraps a failure as
// *os.PathError{Op: op, Path: path, Err: *os.SyscallError("ioctl(NAME)", errno)}.
func ioctl(f *os.File, op, path string, req request, arg unsafe.Pointer) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	var errno unix.Errno
	cerr := conn.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, req.nr, uintptr(arg))
	})
	runtime.KeepAlive(f)
	runtime.KeepAlive(arg)
	if cerr != nil {
		return &os.PathError{Op: op, Path: path, Err: cerr}
	}
	if errno == unix.ENOTTY {
		return &os.PathError{Op: op, Path: path, Err: os.NewSyscallError("ioctl("+req.name+")", notBtrfs{errno})}
	}
	if errno != 0 {
		return &os.PathError{Op: op, Path: path, Err: os.NewSyscallError("ioctl("+req.name+")", errno)}
	}
	return nil
}

// notBtrfs is ENOTTY, what every btrfs ioctl gives on another
// filesystem, with that explanation. errors.Is(err, unix.ENOTTY) holds.
type notBtrfs struct{ unix.Errno }

func (e notBtrfs) Error() string {
	return e.Errno.Error() + " (not on btrfs, or the kernel lacks this ioctl)"
}
func (e notBtrfs) Unwrap() error { return e.Errno }
