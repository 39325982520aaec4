package loop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Config is how a file is attached. Its zero value attaches the whole
// file read-write, buffered, with 512-byte logical blocks.
type Config struct {
	ReadOnly  bool   // the loop device refuses writes (LO_FLAGS_READ_ONLY); the file is opened read-only
	DirectIO  bool   // bypass the page cache for the backing file (LO_FLAGS_DIRECT_IO); see Info for what is in effect
	Autoclear bool   // detach automatically when the last opener closes (LO_FLAGS_AUTOCLEAR)
	PartScan  bool   // scan the device for partitions (LO_FLAGS_PARTSCAN)
	Offset    uint64 // first byte of the file the device exposes
	SizeLimit uint64 // bytes exposed after Offset; 0 means to the end of the file
	BlockSize uint32 // logical block size; 0 means 512
}

// Device is an attached loop device, held open. Close releases our file
// descriptor (which detaches an Autoclear device that nobody else holds);
// Detach unbinds the file.
type Device struct {
	Path   string // "/dev/loopN"
	Number int    // N
	f      *os.File
}

const (
	controlPath = "/dev/loop-control"
	loopMajor   = 7 // Documentation/admin-guide/devices.txt
	// maxAttempts bounds the retries when other processes keep taking the
	// free device first.
	maxAttempts = 64
)

// Attach binds the file at path to a free loop device.
func Attach(path string, cfg Config) (*Device, error) {
	flag := os.O_RDWR
	if cfg.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("attach loop: %w", err)
	}
	defer f.Close() // the loop device holds its own reference
	return AttachFile(f, cfg)
}

// AttachFile binds the open file f to a free loop device. f must be open
// for reading, and for writing unless cfg.ReadOnly.
func AttachFile(f *os.File, cfg Config) (*Device, error) {
	ctl, err := openControl()
	if err != nil {
		return nil, fmt.Errorf("attach loop %s: %w", f.Name(), err)
	}
	defer ctl.Close()
	for range maxAttempts {
		n, err := getFree(ctl)
		if err != nil {
			return nil, fmt.Errorf("attach loop %s: %w", f.Name(), err)
		}
		d, err := tryAttach(n, f, cfg)
		if errors.Is(err, unix.EBUSY) {
			continue // raced: someone bound it between GET_FREE and us
		}
		if err != nil {
			return nil, fmt.Errorf("attach loop %s: %w", f.Name(), err)
		}
		return d, nil
	}
	return nil, fmt.Errorf("attach loop %s: every free device was taken by another process (%d attempts)", f.Name(), maxAttempts)
}

func openControl() (*os.File, error) {
	f, err := os.OpenFile(controlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if mkErr := mknodFromSysfs(controlPath, "/sys/class/misc/loop-control/dev", unix.S_IFCHR, 0, 0); mkErr != nil {
			return nil, fmt.Errorf("open %s: %w (is the loop module loaded?)", controlPath, mkErr)
		}
		f, err = os.OpenFile(controlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	}
	return f, err
}

func getFree(ctl *os.File) (int, error) {
	var n int
	err := control(ctl, func(fd int) (err error) {
		n, err = unix.IoctlRetInt(fd, unix.LOOP_CTL_GET_FREE)
		return err
	})
	if err != nil {
		return 0, &os.PathError{Op: "get free loop device", Path: controlPath, Err: os.NewSyscallError("ioctl(LOOP_CTL_GET_FREE)", err)}
	}
	return n, nil
}

// tryAttach binds f to loop device n; EBUSY means n was taken meanwhile.
func tryAttach(n int, f *os.File, cfg Config) (*Device, error) {
	path := "/dev/loop" + strconv.Itoa(n)
	sysfs := "/sys/block/loop" + strconv.Itoa(n) + "/dev"
	if err := mknodFromSysfs(path, sysfs, unix.S_IFBLK, loopMajor, uint32(n)); err != nil {
		return nil, err
	}
	dev, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := configure(dev, f, cfg); err != nil {
		dev.Close()
		return nil, err
	}
	return &Device{Path: path, Number: n, f: dev}, nil
}

// forceLegacy makes configure skip LOOP_CONFIGURE (tests of the fallback).
var forceLegacy = false

// configure binds f to the loop device dev as cfg says.
func configure(dev, f *os.File, cfg Config) error {
	info := statusFor(f, cfg)
	lc := unix.LoopConfig{Fd: uint32(f.Fd()), Size: cfg.BlockSize, Info: info}
	var err error = unix.ENOTTY
	if !forceLegacy {
		err = control(dev, func(fd int) error { return unix.IoctlLoopConfigure(fd, &lc) })
	}
	// ENOTTY: no LOOP_CONFIGURE (before 5.8). EINVAL may be that too (some
	// kernels answer unknown loop ioctls so) or a bad cfg, which the legacy
	// sequence then reports from its own step.
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		err = configureLegacy(dev, f, cfg, info)
	} else if err != nil {
		err = &os.PathError{Op: "configure", Path: dev.Name(), Err: os.NewSyscallError("ioctl(LOOP_CONFIGURE)", err)}
	}
	runtime.KeepAlive(f)
	return err
}

// statusFor renders cfg as the loop_info64 both paths take.
func statusFor(f *os.File, cfg Config) unix.LoopInfo64 {
	info := unix.LoopInfo64{Offset: cfg.Offset, Sizelimit: cfg.SizeLimit}
	for _, fl := range []struct {
		on   bool
		flag uint32
	}{
		{cfg.ReadOnly, unix.LO_FLAGS_READ_ONLY},
		{cfg.DirectIO, unix.LO_FLAGS_DIRECT_IO},
		{cfg.Autoclear, unix.LO_FLAGS_AUTOCLEAR},
		{cfg.PartScan, unix.LO_FLAGS_PARTSCAN},
	} {
		if fl.on {
			info.Flags |= fl.flag
		}
	}
	name := f.Name()
	if len(name) >= len(info.File_name) {
		name = name[len(name)-len(info.File_name)+1:] // keep the tail, like losetup
	}
	copy(info.File_name[:], name)
	return info
}

// configureLegacy is the pre-5.8 sequence: LOOP_SET_FD (read-only follows
// from the file's open mode), LOOP_SET_STATUS64 (which only takes the
// autoclear and partscan flags), then direct I/O and block size. Any
// failure after LOOP_SET_FD unbinds the file again.
func configureLegacy(dev, f *os.File, cfg Config, info unix.LoopInfo64) error {
	if err := control(dev, func(fd int) error { return unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(f.Fd())) }); err != nil {
		return &os.PathError{Op: "configure", Path: dev.Name(), Err: os.NewSyscallError("ioctl(LOOP_SET_FD)", err)}
	}
	runtime.KeepAlive(f)
	info.Flags &= unix.LOOP_SET_STATUS_SETTABLE_FLAGS
	steps := []struct {
		name string
		call func(fd int) error
		skip bool
	}{
		{"LOOP_SET_STATUS64", func(fd int) error { return unix.IoctlLoopSetStatus64(fd, &info) }, false},
		{"LOOP_SET_DIRECT_IO", func(fd int) error { return unix.IoctlSetInt(fd, unix.LOOP_SET_DIRECT_IO, 1) }, !cfg.DirectIO},
		{"LOOP_SET_BLOCK_SIZE", func(fd int) error { return unix.IoctlSetInt(fd, unix.LOOP_SET_BLOCK_SIZE, int(cfg.BlockSize)) }, cfg.BlockSize == 0},
	}
	for _, s := range steps {
		if s.skip {
			continue
		}
		if err := control(dev, s.call); err != nil {
			_ = control(dev, clearFD)
			return &os.PathError{Op: "configure", Path: dev.Name(), Err: os.NewSyscallError("ioctl("+s.name+")", err)}
		}
	}
	return nil
}

func clearFD(fd int) error { return unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0) }

// control runs fn on f's descriptor, keeping f alive during the call.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var callErr error
	if err := rc.Control(func(fd uintptr) { callErr = fn(int(fd)) }); err != nil {
		return err
	}
	runtime.KeepAlive(f)
	return callErr
}

// mknodFromSysfs makes the node path when it is missing, with the numbers
// from a sysfs "MAJOR:MINOR" file, or major:minor when sysfs has none.
func mknodFromSysfs(path, sysfs string, typ, major, minor uint32) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	if b, err := os.ReadFile(sysfs); err == nil {
		ma, mi, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		maN, err1 := strconv.ParseUint(ma, 10, 32)
		miN, err2 := strconv.ParseUint(mi, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("parse %s %q: want MAJOR:MINOR", sysfs, b)
		}
		major, minor = uint32(maN), uint32(miN)
	} else if typ != unix.S_IFBLK {
		return err
	}
	err := unix.Mknod(path, typ|0o660, int(unix.Mkdev(major, minor)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return &os.PathError{Op: "mknod", Path: path, Err: err}
	}
	return nil
}

// Close closes our descriptor of the loop device. An Autoclear device
// detaches once every opener (us, a mount, a dm table) has let go.
func (d *Device) Close() error { return d.f.Close() }

// Detach unbinds the backing file and closes the device. When others
// still hold the device open, the kernel defers the detach to their last
// close (it sets autoclear).
func (d *Device) Detach() error {
	err := detach(d.f)
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Detach unbinds the backing file of the loop device at path.
func Detach(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("detach loop: %w", err)
	}
	defer f.Close()
	return detach(f)
}

// detach retries LOOP_CLR_FD while the kernel reports EBUSY (kernels
// before 5.x refused to clear a device another process had open).
func detach(f *os.File) error {
	var err error
	for wait := 10 * time.Millisecond; wait < 2*time.Second; wait *= 2 {
		if err = control(f, clearFD); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(wait)
	}
	if err != nil {
		return &os.PathError{Op: "detach", Path: f.Name(), Err: os.NewSyscallError("ioctl(LOOP_CLR_FD)", err)}
	}
	return nil
}

// Info is the state of a loop device (LOOP_GET_STATUS64).
type Info struct {
	Number      uint32
	BackingFile string // as recorded at attach time (at most 63 bytes, tail kept)
	Offset      uint64
	SizeLimit   uint64
	ReadOnly    bool
	DirectIO    bool
	Autoclear   bool
	PartScan    bool
}

// Info returns the device's state.
func (d *Device) Info() (Info, error) {
	var st *unix.LoopInfo64
	err := control(d.f, func(fd int) (err error) {
		st, err = unix.IoctlLoopGetStatus64(fd)
		return err
	})
	if err != nil {
		return Info{}, &os.PathError{Op: "loop status", Path: d.Path, Err: os.NewSyscallError("ioctl(LOOP_GET_STATUS64)", err)}
	}
	return Info{
		Number:      st.Number,
		BackingFile: unix.ByteSliceToString(st.File_name[:]),
		Offset:      st.Offset,
		SizeLimit:   st.Sizelimit,
		ReadOnly:    st.Flags&unix.LO_FLAGS_READ_ONLY != 0,
		DirectIO:    st.Flags&unix.LO_FLAGS_DIRECT_IO != 0,
		Autoclear:   st.Flags&unix.LO_FLAGS_AUTOCLEAR != 0,
		PartScan:    st.Flags&unix.LO_FLAGS_PARTSCAN != 0,
	}, nil
}

// File returns the open loop device, for I/O through it.
func (d *Device) File() *os.File { return d.f }
