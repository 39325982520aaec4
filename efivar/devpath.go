package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Device path node types (UEFI 2.10, 10.3).
const (
	TypeMedia     = 0x04
	TypeEnd       = 0x7f
	SubHardDrive  = 0x01
	SubFilePath   = 0x04
	SubEndEntire  = 0xff
	nodeHeaderLen = 4
)

// ErrDevicePath is wrapped by errors about malformed device paths.
var ErrDevicePath = errors.New("malformed device path")

// DevicePathNode is one EFI_DEVICE_PATH_PROTOCOL node; Data excludes the
// 4-byte header (Type, SubType, Length).
type DevicePathNode struct {
	Type, SubType uint8
	Data          []byte
}

// DevicePath is a single-instance device path without its End node.
type DevicePath []DevicePathNode

// HardDrive is a Hard Drive media device path node (UEFI 2.10, 10.3.5.1);
// LBAs are in the disk's logical blocks.
type HardDrive struct {
	PartitionNumber    uint32
	PartitionStart     uint64
	PartitionSize      uint64
	PartitionSignature GUID  // the GPT partition's unique GUID
	PartitionFormat    uint8 // 0x02: GPT
	SignatureType      uint8 // 0x02: GUID signature
}

// GPT values for HardDrive.
const (
	PartitionFormatGPT = 0x02
	SignatureTypeGUID  = 0x02
)

// HardDriveNode returns the node for a GPT partition.
func HardDriveNode(hd HardDrive) DevicePathNode {
	b, _ := binary.Append(nil, binary.LittleEndian, &hd)
	return DevicePathNode{Type: TypeMedia, SubType: SubHardDrive, Data: b}
}

// FilePathNode returns a File Path node; path uses backslashes
// (\EFI\Linux\initos.efi); forward slashes are converted.
func FilePathNode(path string) DevicePathNode {
	var b []byte
	for _, u := range utf16.Encode([]rune(strings.ReplaceAll(path, "/", `\`) + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return DevicePathNode{Type: TypeMedia, SubType: SubFilePath, Data: b}
}

// HardDrive decodes a Hard Drive node.
func (n DevicePathNode) HardDrive() (HardDrive, bool) {
	var hd HardDrive
	if n.Type != TypeMedia || n.SubType != SubHardDrive || len(n.Data) != binary.Size(hd) {
		return hd, false
	}
	_, err := binary.Decode(n.Data, binary.LittleEndian, &hd)
	return hd, err == nil
}

// FilePath decodes a File Path node.
func (n DevicePathNode) FilePath() (string, bool) {
	if n.Type != TypeMedia || n.SubType != SubFilePath || len(n.Data)%2 != 0 {
		return "", false
	}
	return decodeUTF16Z(n.Data), true
}

// String formats the node like the UEFI shell does.
func (n DevicePathNode) String() string {
	if hd, ok := n.HardDrive(); ok {
		if hd.PartitionFormat == PartitionFormatGPT && hd.SignatureType == SignatureTypeGUID {
			return fmt.Sprintf("HD(%d,GPT,%v,%#x,%#x)", hd.PartitionNumber, hd.PartitionSignature, hd.PartitionStart, hd.PartitionSize)
		}
		return fmt.Sprintf("HD(%d,%d,%#x,%#x)", hd.PartitionNumber, hd.PartitionFormat, hd.PartitionStart, hd.PartitionSize)
	}
	if p, ok := n.FilePath(); ok {
		return p
	}
	return fmt.Sprintf("Path(%d,%d,%x)", n.Type, n.SubType, n.Data)
}

// String joins the nodes with "/".
func (p DevicePath) String() string {
	parts := make([]string, len(p))
	for i, n := range p {
		parts[i] = n.String()
	}
	return strings.Join(parts, "/")
}

// AppendDevicePath encodes p followed by an End Entire node.
func AppendDevicePath(b []byte, p DevicePath) ([]byte, error) {
	for i, n := range p {
		if len(n.Data) > 0xffff-nodeHeaderLen {
			return nil, fmt.Errorf("encode device path: node %d has %d bytes", i, len(n.Data))
		}
		b = append(b, n.Type, n.SubType)
		b = binary.LittleEndian.AppendUint16(b, uint16(nodeHeaderLen+len(n.Data)))
		b = append(b, n.Data...)
	}
	return append(b, TypeEnd, SubEndEntire, nodeHeaderLen, 0), nil
}

// ParseDevicePath decodes the first instance of a device path list up to
// its End Entire node, which must be present.
func ParseDevicePath(b []byte) (DevicePath, error) {
	var p DevicePath
	for off := 0; ; {
		if len(b)-off < nodeHeaderLen {
			return nil, fmt.Errorf("%w: node at %#x: truncated header", ErrDevicePath, off)
		}
		typ, sub := b[off], b[off+1]
		n := int(binary.LittleEndian.Uint16(b[off+2:]))
		if n < nodeHeaderLen || off+n > len(b) {
			return nil, fmt.Errorf("%w: node at %#x: length %d outside the %d-byte path", ErrDevicePath, off, n, len(b))
		}
		if typ == TypeEnd && sub == SubEndEntire {
			return p, nil
		}
		p = append(p, DevicePathNode{Type: typ, SubType: sub, Data: b[off+nodeHeaderLen : off+n]})
		off += n
	}
}

func decodeUTF16Z(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
