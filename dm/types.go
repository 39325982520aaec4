package dm

import (
	"fmt"
	"strings"
)

// Info is the state of one mapped device (DM_DEV_STATUS).
type Info struct {
	Name          string
	UUID          string
	Major, Minor  uint32
	OpenCount     int32  // openers of the mapped device
	TargetCount   uint32 // targets in the live table
	EventNr       uint32
	ReadOnly      bool // the live table was loaded read-only
	Suspended     bool
	LiveTable     bool // a table is active
	InactiveTable bool // a loaded table waits for resume
}

// Device is one entry of the device list (DM_LIST_DEVICES).
type Device struct {
	Name         string
	UUID         string // "" when the device has none (or the kernel predates 5.13)
	Major, Minor uint32
	EventNr      uint32
}

// String renders d as dmsetup ls does: "NAME\t(MAJOR:MINOR)".
func (d Device) String() string { return fmt.Sprintf("%s\t(%d:%d)", d.Name, d.Major, d.Minor) }

// NodePath is the device node CreateDevice makes for name.
func NodePath(name string) string { return mapperDir + "/" + name }

const mapperDir = "/dev/mapper"

// maxName is DM_NAME_LEN including the terminating NUL.
const maxName = 128

// CheckName reports whether name can name a mapped device and its
// /dev/mapper node: 1..127 bytes, no '/', not "." or "..".
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("device name %q: empty, \".\" or \"..\"", name)
	case len(name) >= maxName:
		return fmt.Errorf("device name %q: longer than %d bytes", name, maxName-1)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("device name %q: contains '/' or NUL", name)
	}
	return nil
}
