package btrfsioctl

import "fmt"

// UUID is a btrfs subvolume UUID (all zero when unset).
type UUID [16]byte

// IsZero reports whether u is unset.
func (u UUID) IsZero() bool { return u == UUID{} }

// String formats u like btrfs-progs: 8-4-4-4-12 hex digits, or "-" when
// unset.
func (u UUID) String() string {
	if u.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Subvolume describes one btrfs subvolume.
type Subvolume struct {
	ID       uint64 // subvolume (tree) id; 5 is the top level
	ParentID uint64 // id of the subvolume that contains it (btrfs's "top level")
	Name     string // last path component
	Path     string // path relative to the top level, "" for the top level

	UUID         UUID // its own UUID
	ParentUUID   UUID // UUID of the subvolume it is a snapshot of
	ReceivedUUID UUID // set by btrfs receive

	Generation         uint64 // transaction that last changed it
	CreationGeneration uint64 // transaction that created it ("gen at creation")
	ReadOnly           bool
}
