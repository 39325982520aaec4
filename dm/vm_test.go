package dm

import (
	"testing"

	"initos/internal/vmtest"
)

// TestVM runs the guest tests (vm_guest_test.go) on the Debian kernel
// under qemu: this machine's kernel has no device-mapper.
func TestVM(t *testing.T) {
	vmtest.Run(t, vmtest.Config{
		// xts and ecb back aes-xts-plain64 (aes and cbc are built in);
		// the guest has no modprobe for the crypto API to call.
		Modules: []string{"dm-verity", "dm-crypt", "loop", "xts", "ecb"},
	})
}
