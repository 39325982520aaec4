package main

import (
	"testing"

	"initos/internal/vmtest"
)

// TestVMDM runs the dm and verity open/close CLI guest tests
// (dm_vm_guest_test.go) on the Debian kernel under qemu.
func TestVMDM(t *testing.T) {
	vmtest.Run(t, vmtest.Config{
		Run:     "^TestGuestDM",
		Modules: []string{"dm-verity", "dm-crypt", "loop", "xts", "ecb"},
	})
}
