package btrfsioctl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"
)

// On-disk items returned by the tree search, little-endian and packed
// (include/uapi/linux/btrfs_tree.h); decoded with encoding/binary.

// rootRef is struct btrfs_root_ref, followed by NameLen bytes of name.
type rootRef struct {
	DirID    uint64
	Sequence uint64
	NameLen  uint16
}

// dirItem is struct btrfs_dir_item, followed by NameLen bytes of name.
type dirItem struct {
	LocationObjectID uint64 // struct btrfs_disk_key location
	LocationType     uint8
	LocationOffset   uint64
	TransID          uint64
	DataLen          uint16
	NameLen          uint16
	Type             uint8
}

// rootItem is struct btrfs_root_item. Items written by old kernels end
// after Level (239 bytes); the rest then reads as zero.
type rootItem struct {
	Inode        [160]byte // struct btrfs_inode_item
	Generation   uint64
	RootDirID    uint64
	ByteNr       uint64
	ByteLimit    uint64
	BytesUsed    uint64
	LastSnapshot uint64
	Flags        uint64
	Refs         uint32
	DropProgress [17]byte // struct btrfs_disk_key
	DropLevel    uint8
	Level        uint8
	GenerationV2 uint64
	UUID         [uuidSize]byte
	ParentUUID   [uuidSize]byte
	ReceivedUUID [uuidSize]byte
	CTransID     uint64
	OTransID     uint64
	STransID     uint64
	RTransID     uint64
	CTime        [12]byte // struct btrfs_timespec
	OTime        [12]byte
	STime        [12]byte
	RTime        [12]byte
	Reserved     [8]uint64
}

// rootSubvolRdonly is BTRFS_ROOT_SUBVOL_RDONLY in btrfs_root_item.flags.
const rootSubvolRdonly = 1 << 0

const searchHeaderSize = int(unsafe.Sizeof(searchHeader{}))

// item is one result of a tree search.
type item struct {
	objectID, offset uint64
	typ              uint32
	data             []byte
}

// treeSearch runs BTRFS_IOC_TREE_SEARCH over the key range in key until it
// is exhausted, calling fn for every item (data is only valid during fn).
func treeSearch(f *os.File, path string, key searchKey, fn func(it item) error) error {
	var args searchArgs
	args.key = key
	for {
		args.key.nrItems = 4096
		if err := ioctl(f, "search tree", path, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
			return err
		}
		n := args.key.nrItems
		if n == 0 {
			return nil
		}
		var last searchHeader
		buf := args.buf[:]
		for i := uint32(0); i < n; i++ {
			if len(buf) < searchHeaderSize {
				return fmt.Errorf("search tree %s: item %d: header truncated", path, i)
			}
			h := searchHeader{
				transID:  binary.NativeEndian.Uint64(buf[0:]),
				objectID: binary.NativeEndian.Uint64(buf[8:]),
				offset:   binary.NativeEndian.Uint64(buf[16:]),
				typ:      binary.NativeEndian.Uint32(buf[24:]),
				len:      binary.NativeEndian.Uint32(buf[28:]),
			}
			buf = buf[searchHeaderSize:]
			if int(h.len) > len(buf) {
				return fmt.Errorf("search tree %s: item %d: length %d exceeds buffer", path, i, h.len)
			}
			if err := fn(item{h.objectID, h.offset, h.typ, buf[:h.len]}); err != nil {
				return err
			}
			buf = buf[h.len:]
			last = h
		}
		// Continue after the last key returned: (objectid, type, offset+1).
		args.key.minObjectID, args.key.minType, args.key.minOffset = last.objectID, last.typ, last.offset+1
		if last.offset == ^uint64(0) {
			args.key.minOffset = 0
			args.key.minType++
			if args.key.minType > 255 {
				args.key.minType = 0
				if last.objectID == ^uint64(0) {
					return nil
				}
				args.key.minObjectID++
			}
		}
		if args.key.minObjectID > args.key.maxObjectID {
			return nil
		}
	}
}

// decodeItem decodes the fixed part of an on-disk item, zero-extending a
// short (older) item, and returns the bytes after it.
func decodeItem(data []byte, v any) ([]byte, error) {
	size := binary.Size(v)
	if len(data) < size {
		if _, isRoot := v.(*rootItem); !isRoot || len(data) < 239 {
			return nil, fmt.Errorf("item of %d bytes is shorter than %d", len(data), size)
		}
		data = append(bytes.Clone(data), make([]byte, size-len(data))...)
	}
	n, err := binary.Decode(data, binary.LittleEndian, v)
	if err != nil {
		return nil, err
	}
	return data[n:], nil
}

// itemName returns the name that follows a fixed item part.
func itemName(rest []byte, n uint16) (string, error) {
	if int(n) > len(rest) {
		return "", fmt.Errorf("name length %d exceeds item (%d bytes left)", n, len(rest))
	}
	return string(rest[:n]), nil
}

// cString returns the NUL-terminated string at the start of b.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
