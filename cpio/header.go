package cpio

import (
	"fmt"
	"io/fs"
	"strconv"
)

// Magic numbers of the newc format and its "crc" variant.
const (
	Magic    = "070701"
	MagicCRC = "070702"
)

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// HeaderSize is the size of the fixed part of a newc header.
const HeaderSize = 110

// MaxNameSize bounds names and symlink targets (Linux PATH_MAX, with NUL).
const MaxNameSize = 4096

// File type bits of Header.Mode, as in st_mode.
const (
	TypeMask    = 0o170000
	TypeSocket  = 0o140000
	TypeSymlink = 0o120000
	TypeReg     = 0o100000
	TypeBlock   = 0o060000
	TypeDir     = 0o040000
	TypeChar    = 0o020000
	TypeFifo    = 0o010000
)

// rawHeader is the on-disk newc header: ASCII hex fields in spec order.
type rawHeader struct {
	Magic     [6]byte
	Ino       [8]byte
	Mode      [8]byte
	UID       [8]byte
	GID       [8]byte
	NLink     [8]byte
	MTime     [8]byte
	FileSize  [8]byte
	DevMajor  [8]byte
	DevMinor  [8]byte
	RDevMajor [8]byte
	RDevMinor [8]byte
	NameSize  [8]byte
	Check     [8]byte
}

// Header is one archive entry.
type Header struct {
	Name      string // path inside the archive, without the NUL
	Ino       uint32
	Mode      uint32 // file type (Type*) and permission bits, as st_mode
	UID, GID  uint32
	NLink     uint32
	MTime     uint32 // seconds since the Unix epoch
	Size      uint32 // data size; for a symlink, len(Linkname)
	DevMajor  uint32 // device of the file system the entry came from
	DevMinor  uint32
	RDevMajor uint32 // device number of a character or block device
	RDevMinor uint32
	Check     uint32 // checksum of the data ("070702" archives only)
	Linkname  string // target of a symlink
}

// FileMode returns h.Mode as an fs.FileMode.
func (h *Header) FileMode() fs.FileMode {
	m := fs.FileMode(h.Mode & 0o777)
	switch h.Mode & TypeMask {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlock:
		m |= fs.ModeDevice
	case TypeFifo:
		m |= fs.ModeNamedPipe
	case TypeSocket:
		m |= fs.ModeSocket
	case TypeReg:
	default:
		m |= fs.ModeIrregular
	}
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// fields returns pointers to the numeric fields of r and h in spec order,
// with their spec names, for encoding and decoding.
func fields(r *rawHeader, h *Header, nameSize *uint32) []struct {
	name string
	raw  *[8]byte
	val  *uint32
} {
	return []struct {
		name string
		raw  *[8]byte
		val  *uint32
	}{
		{"c_ino", &r.Ino, &h.Ino}, {"c_mode", &r.Mode, &h.Mode}, {"c_uid", &r.UID, &h.UID},
		{"c_gid", &r.GID, &h.GID}, {"c_nlink", &r.NLink, &h.NLink}, {"c_mtime", &r.MTime, &h.MTime},
		{"c_filesize", &r.FileSize, &h.Size}, {"c_devmajor", &r.DevMajor, &h.DevMajor},
		{"c_devminor", &r.DevMinor, &h.DevMinor}, {"c_rdevmajor", &r.RDevMajor, &h.RDevMajor},
		{"c_rdevminor", &r.RDevMinor, &h.RDevMinor}, {"c_namesize", &r.NameSize, nameSize},
		{"c_check", &r.Check, &h.Check},
	}
}

// decode parses the fields of r into h and returns the name size.
func (r *rawHeader) decode(h *Header) (nameSize uint32, err error) {
	for _, f := range fields(r, h, &nameSize) {
		v, err := parseHex(f.raw[:])
		if err != nil {
			return 0, fmt.Errorf("field %s: %w", f.name, err)
		}
		*f.val = v
	}
	return nameSize, nil
}

// encode formats h into r with the given magic and name size.
func (r *rawHeader) encode(h *Header, magic string, nameSize uint32) {
	copy(r.Magic[:], magic)
	for _, f := range fields(r, h, &nameSize) {
		formatHex(f.raw, *f.val)
	}
}

// parseHex parses exactly 8 hex digits (either case), as the kernel's
// simple_strntoul would, but rejecting anything else.
func parseHex(b []byte) (uint32, error) {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return 0, fmt.Errorf("%q is not 8 hex digits", b)
		}
	}
	v, err := strconv.ParseUint(string(b), 16, 32)
	return uint32(v), err
}

const hexDigits = "0123456789ABCDEF"

func formatHex(dst *[8]byte, v uint32) {
	for i := 7; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// pad returns the padding after n bytes to reach a multiple of 4.
func pad(n int64) int64 { return (4 - n%4) % 4 }
