package kmod_test

import (
	"testing"

	"initos/internal/vmtest"
)

// TestVM runs vm_guest_test.go on the Debian kernel under qemu. The
// modules are shipped into the guest's /lib/modules/<version> but not
// preloaded: loading them is what the guest tests check.
func TestVM(t *testing.T) {
	vmtest.Run(t, vmtest.Config{
		ExtraModules: []string{"dm-verity", "dm-crypt", "btrfs", "squashfs", "vfat", "crc7", "crc8", "crc-itu-t", "crypto-aes"},
	})
}
