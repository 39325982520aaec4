package squashfs

import (
	"encoding/binary"
	"fmt"
)

// On-disk constants of squashfs 4.0 (kernel fs/squashfs/squashfs_fs.h;
// squashfs-tools-ng doc/format.adoc).
const (
	magic        = 0x73717368 // "hsqs"
	versionMajor = 4
	versionMinor = 0

	superblockSize = 96
	metaSize       = 8192   // uncompressed size of a metadata block
	metaHeaderSize = 2      // u16 length before each metadata block
	metaRawBit     = 0x8000 // metadata header: block stored uncompressed
	dataRawBit     = 1 << 24
	invalidFrag    = 0xFFFFFFFF
	invalidXattr   = 0xFFFFFFFF
	invalidTable   = 0xFFFFFFFFFFFFFFFF

	// MinBlockSize and MaxBlockSize bound Options.BlockSize (a power of
	// two); DefaultBlockSize is mksquashfs's default.
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 1 << 20
	DefaultBlockSize = 128 << 10

	maxNameLen    = 256  // kernel SQUASHFS_NAME_LEN
	maxSymlinkLen = 4096 // kernel: a symlink longer than PAGE_SIZE is corrupt
	dirMaxEntries = 256  // entries after one directory header
	devBlockSize  = 4096 // images are padded to a multiple of this
)

// Superblock flags.
const (
	flagNoFragments     = 0x0010
	flagAlwaysFragments = 0x0020
	flagDuplicates      = 0x0040
	flagExportable      = 0x0080
	flagNoXattrs        = 0x0200
	flagCompOptions     = 0x0400
)

// Inode types. Directory entries always carry the basic type.
const (
	typeDir      = 1
	typeFile     = 2
	typeSymlink  = 3
	typeBlock    = 4
	typeChar     = 5
	typeFifo     = 6
	typeSocket   = 7
	typeExtDir   = 8
	typeExtFile  = 9
	typeExtSym   = 10
	typeExtBlock = 11
	typeExtChar  = 12
	typeExtFifo  = 13
	typeExtSock  = 14
	extOffset    = typeExtDir - typeDir // basic type + 7 = extended type
)

// superblock is the 96-byte header at offset 0.
type superblock struct {
	Magic          uint32
	Inodes         uint32
	ModTime        uint32
	BlockSize      uint32
	Fragments      uint32
	Compressor     uint16
	BlockLog       uint16
	Flags          uint16
	IDs            uint16
	Major          uint16
	Minor          uint16
	RootInode      uint64
	BytesUsed      uint64
	IDTable        uint64
	XattrIDTable   uint64
	InodeTable     uint64
	DirectoryTable uint64
	FragmentTable  uint64
	ExportTable    uint64
}

// inodeHeader starts every inode.
type inodeHeader struct {
	Type   uint16
	Perm   uint16
	UID    uint16 // index into the id table
	GID    uint16
	Mtime  uint32
	Number uint32
}

// dirInode is a basic directory (type 1).
type dirInode struct {
	StartBlock uint32
	Nlink      uint32
	FileSize   uint16
	Offset     uint16
	Parent     uint32
}

// extDirInode is an extended directory (type 8), followed by IndexCount
// dirIndex entries.
type extDirInode struct {
	Nlink      uint32
	FileSize   uint32
	StartBlock uint32
	Parent     uint32
	IndexCount uint16
	Offset     uint16
	Xattr      uint32
}

// dirIndex is one directory index entry, followed by NameSize+1 bytes.
type dirIndex struct {
	Index    uint32 // byte offset of the header in the listing
	Start    uint32 // its metadata block, relative to the directory table
	NameSize uint32
}

// fileInode is a basic regular file (type 2), followed by the block sizes.
type fileInode struct {
	StartBlock uint32
	Fragment   uint32
	Offset     uint32
	FileSize   uint32
}

// extFileInode is an extended regular file (type 9).
type extFileInode struct {
	StartBlock uint64
	FileSize   uint64
	Sparse     uint64
	Nlink      uint32
	Fragment   uint32
	Offset     uint32
	Xattr      uint32
}

// symlinkInode (types 3 and 10) is followed by the target, and for type 10
// by a u32 xattr index.
type symlinkInode struct {
	Nlink      uint32
	TargetSize uint32
}

// devInode (types 4, 5; 11, 12 add a u32 xattr index).
type devInode struct {
	Nlink uint32
	Rdev  uint32
}

// ipcInode (types 6, 7; 13, 14 add a u32 xattr index).
type ipcInode struct {
	Nlink uint32
}

// dirHeader starts a run of at most 256 directory entries whose inodes
// share one metadata block.
type dirHeader struct {
	Count  uint32 // entries - 1
	Start  uint32 // inode metadata block, relative to the inode table
	Number uint32 // base inode number
}

// dirEntry is followed by NameSize+1 bytes of name.
type dirEntry struct {
	Offset   uint16
	InodeOff int16
	Type     uint16
	NameSize uint16
}

// fragEntry is one fragment table entry.
type fragEntry struct {
	Start  uint64
	Size   uint32
	Unused uint32
}

// xattrIDEntry locates the key/value pairs of one xattr set.
type xattrIDEntry struct {
	Ref   uint64
	Count uint32
	Size  uint32
}

// xattrTableHeader is what the superblock's xattr table field points at,
// followed by the locations of the xattr id metadata blocks.
type xattrTableHeader struct {
	KVStart uint64
	IDs     uint32
	Unused  uint32
}

// Sizes of the fixed structures, checked against binary.Size in tests.
const (
	inodeHeaderSize  = 16
	dirHeaderSize    = 12
	dirEntrySize     = 8
	dirIndexSize     = 12
	fragEntrySize    = 16
	xattrIDEntrySize = 16
)

var le = binary.LittleEndian

// appendStruct appends the little-endian encoding of a fixed-size struct.
func appendStruct(b []byte, v any) []byte {
	b, err := binary.Append(b, le, v)
	if err != nil {
		panic(fmt.Sprintf("squashfs: encode %T: %v", v, err)) // fixed-size structs only
	}
	return b
}

// inodeRef packs a metadata location: the block's offset from its table
// start (upper 48 bits) and the offset inside the uncompressed block.
func inodeRef(block uint64, offset uint16) uint64 { return block<<16 | uint64(offset) }

// splitRef is the inverse of inodeRef.
func splitRef(ref uint64) (block uint64, offset uint16) { return ref >> 16, uint16(ref) }

// encodeDev packs a device number the way Linux new_encode_dev does.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major&0xfff<<8 | (minor&^0xff)<<12
}

// decodeDev is Linux new_decode_dev.
func decodeDev(dev uint32) (major, minor uint32) {
	return dev >> 8 & 0xfff, dev&0xff | dev>>12&0xfff00
}

// decodeStruct decodes a fixed-size little-endian struct from b.
func decodeStruct(b []byte, v any) (int, error) { return binary.Decode(b, le, v) }
