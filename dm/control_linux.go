package dm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control node.
const ControlPath = mapperDir + "/" + unix.DM_CONTROL_NODE

// miscDevPath holds "MAJOR:MINOR" of the control node (misc device).
const miscDevPath = "/sys/class/misc/device-mapper/dev"

// Control is an open /dev/mapper/control: every dm ioctl goes through it.
// A Control is safe for concurrent use (each call is one or a few
// independent ioctls).
type Control struct {
	f *os.File
}

// Open opens the control node, creating it from sysfs when /dev has no
// node for it (an initramfs without devtmpfs or udev).
func Open() (*Control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if mkErr := makeControlNode(); mkErr != nil {
			return nil, fmt.Errorf("open device-mapper control: %w (and %w)", err, mkErr)
		}
		f, err = os.OpenFile(ControlPath, os.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if errors.Is(err, unix.ENODEV) {
		return nil, fmt.Errorf("open device-mapper control: %w (the kernel has no device-mapper: load dm-mod)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("open device-mapper control: %w", err)
	}
	return &Control{f: f}, nil
}

func makeControlNode() error {
	b, err := os.ReadFile(miscDevPath)
	if err != nil {
		return fmt.Errorf("find control node number (is dm-mod loaded?): %w", err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &major, &minor); err != nil {
		return fmt.Errorf("parse %s %q: %w", miscDevPath, b, err)
	}
	if err := os.MkdirAll(mapperDir, 0o755); err != nil {
		return err
	}
	return mknodAtomic(ControlPath, unix.S_IFCHR|0o600, major, minor)
}

// Close closes the control node.
func (c *Control) Close() error { return c.f.Close() }

// Version returns the kernel's dm ioctl interface version (major, minor,
// patch), e.g. 4.47.0 on Linux 6.1.
func (c *Control) Version() ([3]uint32, error) {
	hdr, _, err := c.do(request{cmd: unix.DM_VERSION, cmdName: "DM_VERSION", op: "dm version"})
	return hdr.Version, err
}

// Create creates an empty mapped device (no table) named name with an
// optional uuid ("" for none) and returns its state.
func (c *Control) Create(name, uuid string) (Info, error) {
	if err := CheckName(name); err != nil {
		return Info{}, err
	}
	hdr, _, err := c.do(request{cmd: unix.DM_DEV_CREATE, cmdName: "DM_DEV_CREATE", op: "dm create", name: name, uuid: uuid})
	return infoFrom(hdr), err
}

// Load loads targets as the inactive table of name; Resume makes it live.
// readOnly loads the table read-only (required by verity). Tables with key
// material are passed with DM_SECURE_DATA_FLAG so the kernel wipes its
// copy, and our buffers are wiped too.
func (c *Control) Load(name string, readOnly bool, targets ...Target) error {
	payload, n, err := marshalTable(targets)
	if err != nil {
		return fmt.Errorf("dm load table %s: %w", name, err)
	}
	defer clear(payload)
	r := request{cmd: unix.DM_TABLE_LOAD, cmdName: "DM_TABLE_LOAD", op: "dm load table", name: name,
		targets: n, payload: payload, secure: true, flags: unix.DM_SECURE_DATA_FLAG}
	if readOnly {
		r.flags |= unix.DM_READONLY_FLAG
	}
	_, _, err = c.do(r)
	return err
}

// Suspend suspends name (I/O queues until Resume).
func (c *Control) Suspend(name string) error {
	_, _, err := c.do(request{cmd: unix.DM_DEV_SUSPEND, cmdName: "DM_DEV_SUSPEND", op: "dm suspend",
		name: name, flags: unix.DM_SUSPEND_FLAG})
	return err
}

// Resume makes a loaded table live (or resumes a suspended device) and
// returns the device's state. It passes the udev cookie described in the
// package documentation.
func (c *Control) Resume(name string) (Info, error) {
	hdr, _, err := c.do(request{cmd: unix.DM_DEV_SUSPEND, cmdName: "DM_DEV_SUSPEND", op: "dm resume",
		name: name, eventNr: udevCookie()})
	return infoFrom(hdr), err
}

// Remove removes name. While the device is busy (EBUSY: an opener such as
// udev's blkid probe has not let go yet) it retries with exponential
// backoff for at most RemoveRetryTime.
func (c *Control) Remove(name string) error {
	r := request{cmd: unix.DM_DEV_REMOVE, cmdName: "DM_DEV_REMOVE", op: "dm remove", name: name, eventNr: udevCookie()}
	deadline := time.Now().Add(RemoveRetryTime)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		_, _, err := c.do(r)
		if !errors.Is(err, unix.EBUSY) || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// RemoveRetryTime bounds Remove's retries on EBUSY.
const RemoveRetryTime = 5 * time.Second

// Info returns the state of name. A missing device gives an error that
// matches fs.ErrNotExist (and unix.ENXIO).
func (c *Control) Info(name string) (Info, error) {
	hdr, _, err := c.do(request{cmd: unix.DM_DEV_STATUS, cmdName: "DM_DEV_STATUS", op: "dm info", name: name})
	return infoFrom(hdr), err
}

// Status returns the status line of each target of name's live table
// (verity: "V" valid or "C" corruption seen; crypt: nothing).
func (c *Control) Status(name string) ([]Spec, error) {
	return c.tableStatus(name, "dm status", 0)
}

// Table returns name's live table. Crypt keys given as hex are part of the
// reply: MaskKeys hides them for display.
func (c *Control) Table(name string) ([]Spec, error) {
	return c.tableStatus(name, "dm table", unix.DM_STATUS_TABLE_FLAG)
}

func (c *Control) tableStatus(name, op string, flags uint32) ([]Spec, error) {
	hdr, out, err := c.do(request{cmd: unix.DM_TABLE_STATUS, cmdName: "DM_TABLE_STATUS", op: op, name: name, flags: flags})
	if err != nil {
		return nil, err
	}
	specs, err := parseSpecs(out, hdr.Target_count)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	return specs, nil
}

// List returns every mapped device.
func (c *Control) List() ([]Device, error) {
	// DM_UUID_FLAG asks for the UUIDs (Linux 5.14+; older kernels ignore it).
	_, out, err := c.do(request{cmd: unix.DM_LIST_DEVICES, cmdName: "DM_LIST_DEVICES", op: "dm list", flags: unix.DM_UUID_FLAG})
	if err != nil {
		return nil, err
	}
	return parseNameList(out)
}

// Message sends msg to the target of name covering sector (0 for
// single-target tables) and returns the target's reply, if any.
func (c *Control) Message(name string, sector uint64, msg string) (string, error) {
	if strings.IndexByte(msg, 0) >= 0 {
		return "", fmt.Errorf("dm message %s: message contains NUL", name)
	}
	tm := unix.DmTargetMsg{Sector: sector}
	payload := make([]byte, msgSize+len(msg)+1) // struct dm_target_msg, message, NUL
	copy(payload, asBytes(&tm))
	copy(payload[msgSize:], msg)
	hdr, out, err := c.do(request{cmd: unix.DM_TARGET_MSG, cmdName: "DM_TARGET_MSG", op: "dm message", name: name, payload: payload})
	if err != nil || hdr.Flags&unix.DM_DATA_OUT_FLAG == 0 {
		return "", err
	}
	return cString(out), nil
}

func infoFrom(h unix.DmIoctl) Info {
	return Info{
		Name:          cString(h.Name[:]),
		UUID:          cString(h.Uuid[:]),
		Major:         unix.Major(h.Dev),
		Minor:         unix.Minor(h.Dev),
		OpenCount:     h.Open_count,
		TargetCount:   h.Target_count,
		EventNr:       h.Event_nr,
		ReadOnly:      h.Flags&unix.DM_READONLY_FLAG != 0,
		Suspended:     h.Flags&unix.DM_SUSPEND_FLAG != 0,
		LiveTable:     h.Flags&unix.DM_ACTIVE_PRESENT_FLAG != 0,
		InactiveTable: h.Flags&unix.DM_INACTIVE_PRESENT_FLAG != 0,
	}
}
