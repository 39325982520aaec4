// Package btrfstest gives tier-1 tests a scratch btrfs filesystem: a sparse
// file formatted with mkfs.btrfs and loop-mounted with mount(8), unmounted
// (which also detaches the loop device) in t.Cleanup.
package btrfstest
