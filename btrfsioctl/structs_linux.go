package btrfsioctl

// Kernel ABI structures, field for field in the order of
// include/uapi/linux/btrfs.h. Their sizes are part of the ioctl numbers and
// are asserted against the kernel's in structs_linux_test.go.

const (
	pathNameMax      = 4087 // BTRFS_PATH_NAME_MAX
	subvolNameMax    = 4039 // BTRFS_SUBVOL_NAME_MAX
	volNameMax       = 255  // BTRFS_VOL_NAME_MAX
	inoLookupPathMax = 4080 // BTRFS_INO_LOOKUP_PATH_MAX
	uuidSize         = 16   // BTRFS_UUID_SIZE
	searchBufSize    = 4096 - 104
)

// Flags of btrfs_ioctl_vol_args_v2 and of SUBVOL_GETFLAGS/SETFLAGS.
const (
	subvolRdonly   = 1 << 1 // BTRFS_SUBVOL_RDONLY
	subvolSpecByID = 1 << 4 // BTRFS_SUBVOL_SPEC_BY_ID
)

// Well-known object ids and key types (fs/btrfs/ctree.h, uapi btrfs_tree.h).
const (
	rootTreeObjectID    = 1           // BTRFS_ROOT_TREE_OBJECTID
	rootTreeDirObjectID = 6           // BTRFS_ROOT_TREE_DIR_OBJECTID
	fsTreeObjectID      = 5           // BTRFS_FS_TREE_OBJECTID
	firstFreeObjectID   = 256         // BTRFS_FIRST_FREE_OBJECTID
	lastFreeObjectID    = 1<<64 - 256 // BTRFS_LAST_FREE_OBJECTID (-256ULL)

	dirItemKey     = 84  // BTRFS_DIR_ITEM_KEY
	rootItemKey    = 132 // BTRFS_ROOT_ITEM_KEY
	rootBackrefKey = 144 // BTRFS_ROOT_BACKREF_KEY
)

// volArgs is struct btrfs_ioctl_vol_args.
type volArgs struct {
	fd   int64
	name [pathNameMax + 1]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2; the trailing union of
// name/devid/subvolid is the name array (subvolid is its first 8 bytes).
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64 // union { size, qgroup_inherit; unused[4] }
	name    [subvolNameMax + 1]byte
}

// searchKey is struct btrfs_ioctl_search_key.
type searchKey struct {
	treeID      uint64
	minObjectID uint64
	maxObjectID uint64
	minOffset   uint64
	maxOffset   uint64
	minTransID  uint64
	maxTransID  uint64
	minType     uint32
	maxType     uint32
	nrItems     uint32
	unused      uint32
	unused1     [4]uint64
}

// searchHeader is struct btrfs_ioctl_search_header.
type searchHeader struct {
	transID  uint64
	objectID uint64
	offset   uint64
	typ      uint32
	len      uint32
}

// searchArgs is struct btrfs_ioctl_search_args.
type searchArgs struct {
	key searchKey
	buf [searchBufSize]byte
}

// inoLookupArgs is struct btrfs_ioctl_ino_lookup_args.
type inoLookupArgs struct {
	treeID   uint64
	objectID uint64
	name     [inoLookupPathMax]byte
}

// timespec is struct btrfs_ioctl_timespec (naturally aligned: 16 bytes).
type timespec struct {
	sec  uint64
	nsec uint32
	_    uint32
}

// getSubvolInfoArgs is struct btrfs_ioctl_get_subvol_info_args.
type getSubvolInfoArgs struct {
	treeID       uint64
	name         [volNameMax + 1]byte
	parentID     uint64
	dirID        uint64
	generation   uint64
	flags        uint64
	uuid         [uuidSize]byte
	parentUUID   [uuidSize]byte
	receivedUUID [uuidSize]byte
	ctransid     uint64
	otransid     uint64
	stransid     uint64
	rtransid     uint64
	ctime        timespec
	otime        timespec
	stime        timespec
	rtime        timespec
	reserved     [8]uint64
}
