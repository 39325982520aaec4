package btrfsioctl

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

func TestStructSizes(t *testing.T) {
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"btrfs_ioctl_vol_args", unsafe.Sizeof(volArgs{}), 4096},
		{"btrfs_ioctl_vol_args_v2", unsafe.Sizeof(volArgsV2{}), 4096},
		{"btrfs_ioctl_search_key", unsafe.Sizeof(searchKey{}), 104},
		{"btrfs_ioctl_search_header", unsafe.Sizeof(searchHeader{}), 32},
		{"btrfs_ioctl_search_args", unsafe.Sizeof(searchArgs{}), 4096},
		{"btrfs_ioctl_ino_lookup_args", unsafe.Sizeof(inoLookupArgs{}), 4096},
		{"btrfs_ioctl_timespec", unsafe.Sizeof(timespec{}), 16},
		{"btrfs_ioctl_get_subvol_info_args", unsafe.Sizeof(getSubvolInfoArgs{}), 504},
		{"btrfs_root_ref", uintptr(binary.Size(rootRef{})), 18},
		{"btrfs_dir_item", uintptr(binary.Size(dirItem{})), 30},
		{"btrfs_root_item", uintptr(binary.Size(rootItem{})), 439},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("sizeof(%s) = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// TestRequestNumbers pins the ioctl numbers to the values the kernel
// headers produce on the generic _IOC layout (amd64, arm64).
func TestRequestNumbers(t *testing.T) {
	tests := []struct {
		req  request
		want uintptr
	}{
		{iocSync, 0x9408},
		{iocSnapDestroy, 0x5000940f},
		{iocTreeSearch, 0xd0009411},
		{iocInoLookup, 0xd0009412},
		{iocDefaultSubvol, 0x40089413},
		{iocSnapCreateV2, 0x50009417},
		{iocSubvolCreateV2, 0x50009418},
		{iocSubvolGetflags, 0x80089419},
		{iocSubvolSetflags, 0x4008941a},
		{iocGetSubvolInfo, 0x81f8943c},
		{iocSnapDestroyV2, 0x5000943f},
	}
	for _, tt := range tests {
		if tt.req.nr != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.req.name, tt.req.nr, tt.want)
		}
	}
}

func TestUUIDString(t *testing.T) {
	u := UUID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 7}
	if got, want := u.String(), "01234567-89ab-cdef-0001-020304050607"; got != want {
		t.Errorf("UUID.String() = %q, want %q", got, want)
	}
	if got := (UUID{}).String(); got != "-" {
		t.Errorf("UUID{}.String() = %q, want \"-\"", got)
	}
}
