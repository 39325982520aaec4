package dm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ABI sizes, all from the x/sys/unix mirrors of <linux/dm-ioctl.h>.
var (
	headerSize = int(unsafe.Sizeof(unix.DmIoctl{}))      // struct dm_ioctl, data_start
	specSize   = int(unsafe.Sizeof(unix.DmTargetSpec{})) // struct dm_target_spec
	msgSize    = int(unsafe.Sizeof(unix.DmTargetMsg{}))  // struct dm_target_msg before message[]
	// struct dm_name_list is {__u64 dev; __u32 next; char name[];}: the
	// name starts right after next (Go would pad the struct, C does not).
	nameOffset = int(unsafe.Offsetof(nameList{}.Next) + unsafe.Sizeof(nameList{}.Next))
)

// nameList mirrors the fixed part of struct dm_name_list.
type nameList struct {
	Dev  uint64
	Next uint32
}

const (
	minBuffer = 16 << 10 // first output buffer; doubled on DM_BUFFER_FULL_FLAG
	maxBuffer = 16 << 20 // give up beyond this
	align     = 8        // the kernel aligns records in the data area to 8 bytes
)

// ioctlVersion is the interface version we request: major 4 is the ABI;
// minor 0 lets any 4.x kernel accept the call (the kernel rejects a minor
// newer than its own).
var ioctlVersion = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}

// request is one dm ioctl: the header fields we set and the data payload.
type request struct {
	cmd     uint   // DM_* ioctl number
	cmdName string // "DM_TABLE_LOAD", for errors
	op      string // "load table", for errors
	name    string // device name
	uuid    string // device UUID (create only)
	flags   uint32
	eventNr uint32 // udev cookie (resume, remove)
	targets uint32 // target_count (table load)
	payload []byte // data area contents
	secure  bool   // payload holds key material: wipe buffers after use
}

// asBytes views a fixed-size ABI struct as bytes.
func asBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func alignUp(n int) int { return (n + align - 1) &^ (align - 1) }

// putString copies s NUL-terminated into dst, which must be large enough
// for the string and its terminator.
func putString(dst []byte, what, s string) error {
	if len(s) >= len(dst) {
		return fmt.Errorf("%s %q: longer than %d bytes", what, s, len(dst)-1)
	}
	copy(dst, s)
	return nil
}

// cString returns b up to its first NUL.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// do runs r on the control file and returns the reply header and data
// area. It grows the buffer while the kernel reports DM_BUFFER_FULL_FLAG.
func (c *Control) do(r request) (unix.DmIoctl, []byte, error) {
	size := max(minBuffer, alignUp(headerSize+len(r.payload)))
	for {
		hdr, out, full, err := c.once(r, size)
		if err != nil || !full {
			return hdr, out, err
		}
		if size *= 2; size > maxBuffer {
			return hdr, nil, c.pathErr(r, unix.ENOBUFS)
		}
	}
}

func (c *Control) once(r request, size int) (hdr unix.DmIoctl, out []byte, full bool, err error) {
	buf := make([]byte, size)
	if r.secure {
		defer clear(buf)
	}
	hdr.Version = ioctlVersion
	hdr.Data_size = uint32(size)
	hdr.Data_start = uint32(headerSize)
	hdr.Target_count = r.targets
	hdr.Flags = r.flags
	hdr.Event_nr = r.eventNr
	if err := putString(hdr.Name[:], "device name", r.name); err != nil {
		return hdr, nil, false, err
	}
	if err := putString(hdr.Uuid[:], "device uuid", r.uuid); err != nil {
		return hdr, nil, false, err
	}
	copy(buf, asBytes(&hdr))
	copy(buf[headerSize:], r.payload)
	if errno := c.ioctl(r.cmd, buf); errno != 0 {
		return hdr, nil, false, c.pathErr(r, errno)
	}
	copy(asBytes(&hdr), buf)
	if hdr.Flags&unix.DM_BUFFER_FULL_FLAG != 0 {
		return hdr, nil, true, nil
	}
	// Replies without data set data_size to the header's length, below
	// data_start: no data.
	start, end := int(hdr.Data_start), int(hdr.Data_size)
	if end > size {
		return hdr, nil, false, fmt.Errorf("%s %s: reply data ends at %d, beyond the %d-byte buffer", r.op, r.name, end, size)
	}
	if start < end && !r.secure {
		out = buf[start:end]
	}
	return hdr, out, false, nil
}

// ioctl is the single funnel to the kernel: it keeps the control file and
// the buffer alive for the duration of the call.
func (c *Control) ioctl(cmd uint, buf []byte) syscall.Errno {
	var errno syscall.Errno
	rc, err := c.f.SyscallConn()
	if err != nil {
		return unix.EBADF
	}
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(cmd), uintptr(unsafe.Pointer(&buf[0])))
	}); err != nil {
		return unix.EBADF
	}
	runtime.KeepAlive(buf)
	runtime.KeepAlive(c.f)
	return errno
}

// pathErr wraps errno as "<op> <device>: ioctl(<DM_CMD>): <errno>".
func (c *Control) pathErr(r request, errno syscall.Errno) error {
	return &os.PathError{Op: r.op, Path: r.name, Err: os.NewSyscallError("ioctl("+r.cmdName+")", dmErrno{errno})}
}

// dmErrno is an errno from a dm ioctl. It also matches fs.ErrNotExist for
// ENXIO, the kernel's answer for an unknown device name.
type dmErrno struct{ errno syscall.Errno }

func (e dmErrno) Error() string { return e.errno.Error() }
func (e dmErrno) Unwrap() error { return e.errno }
func (e dmErrno) Is(target error) bool {
	return target == fs.ErrNotExist && e.errno == unix.ENXIO
}

// marshalTable renders targets as the DM_TABLE_LOAD payload: per target a
// struct dm_target_spec, its NUL-terminated parameter string, padding to
// 8 bytes; each spec's next is the offset of the following spec from it.
func marshalTable(targets []Target) (payload []byte, count uint32, err error) {
	if len(targets) == 0 {
		return nil, 0, errors.New("table has no targets")
	}
	var start uint64
	for i, t := range targets {
		if t == nil {
			return nil, 0, fmt.Errorf("target %d is nil", i)
		}
		params, err := t.Params()
		if err != nil {
			return nil, 0, fmt.Errorf("target %d (%s): %w", i, t.Type(), err)
		}
		if err := checkTarget(t, start, params); err != nil {
			return nil, 0, fmt.Errorf("target %d: %w", i, err)
		}
		entry := alignUp(specSize + len(params) + 1)
		spec := unix.DmTargetSpec{Sector_start: start, Length: t.Sectors(), Next: uint32(entry)}
		copy(spec.Target_type[:], t.Type())
		rec := make([]byte, entry)
		copy(rec, asBytes(&spec))
		copy(rec[specSize:], params)
		payload = append(payload, rec...)
		start += t.Sectors()
	}
	return payload, uint32(len(targets)), nil
}

func checkTarget(t Target, start uint64, params string) error {
	if err := checkType(t.Type()); err != nil {
		return err
	}
	if t.Sectors() == 0 {
		return fmt.Errorf("%s target has length 0", t.Type())
	}
	if s, ok := t.(Spec); ok && s.Start != start {
		return fmt.Errorf("%s target starts at sector %d, want %d (targets must be contiguous)", s.Kind, s.Start, start)
	}
	for _, c := range []byte(params) {
		if c == 0 {
			return fmt.Errorf("%s target parameters contain NUL", t.Type())
		}
	}
	return nil
}

// parseSpecs decodes the DM_TABLE_STATUS reply: count specs, each followed
// by its string; spec.next is the offset of the next spec from the start
// of the data area.
func parseSpecs(data []byte, count uint32) ([]Spec, error) {
	specs := make([]Spec, 0, min(count, 1024))
	off := 0
	for i := uint32(0); i < count; i++ {
		if off < 0 || off+specSize > len(data) {
			return nil, fmt.Errorf("parse table: target %d at offset %d beyond %d-byte reply", i, off, len(data))
		}
		var s unix.DmTargetSpec
		copy(asBytes(&s), data[off:])
		specs = append(specs, Spec{
			Start:  s.Sector_start,
			Length: s.Length,
			Kind:   cString(s.Target_type[:]),
			Args:   cString(data[off+specSize:]),
		})
		if int(s.Next) <= off && i+1 < count {
			return nil, fmt.Errorf("parse table: target %d: next offset %d does not advance past %d", i, s.Next, off)
		}
		off = int(s.Next)
	}
	return specs, nil
}

// parseNameList decodes the DM_LIST_DEVICES reply: struct dm_name_list
// records chained by next (relative to each record), each followed, after
// the NUL-terminated name padded to 8 bytes, by event_nr, flags and (when
// flags has DM_NAME_LIST_FLAG_HAS_UUID) the UUID. A first record with
// dev 0, or no data at all, means no devices.
func parseNameList(data []byte) ([]Device, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var devs []Device
	for off := 0; ; {
		if off+nameOffset > len(data) {
			return nil, fmt.Errorf("parse device list: record at offset %d beyond %d-byte reply", off, len(data))
		}
		var nl nameList
		nl.Dev = binary.NativeEndian.Uint64(data[off:])
		nl.Next = binary.NativeEndian.Uint32(data[off+int(unsafe.Offsetof(nl.Next)):])
		if nl.Dev == 0 && off == 0 && nl.Next == 0 {
			return nil, nil
		}
		end := len(data)
		if nl.Next != 0 {
			if int(nl.Next) < nameOffset || off+int(nl.Next) > len(data) {
				return nil, fmt.Errorf("parse device list: record at offset %d: next %d out of range", off, nl.Next)
			}
			end = off + int(nl.Next)
		}
		devs = append(devs, parseNameRecord(data[off:end], nl.Dev))
		if nl.Next == 0 {
			return devs, nil
		}
		off += int(nl.Next)
	}
}

// parseNameRecord decodes one record (bounded by the next one).
func parseNameRecord(rec []byte, dev uint64) Device {
	d := Device{Name: cString(rec[nameOffset:]), Major: unix.Major(dev), Minor: unix.Minor(dev)}
	p := alignUp(nameOffset + len(d.Name) + 1)
	if p+8 > len(rec) {
		return d // kernels before 5.13 end the record after the name
	}
	d.EventNr = binary.NativeEndian.Uint32(rec[p:])
	if binary.NativeEndian.Uint32(rec[p+4:])&unix.DM_NAME_LIST_FLAG_HAS_UUID != 0 {
		d.UUID = cString(rec[p+8:])
	}
	return d
}
