package enroll

import (
	"path/filepath"
	"testing"

	"initos/internal/vmtest"
	"initos/luks2"
)

// vmPass opens keyslot 0 of the volume TestVMUnlockMeasure gives the guest.
const vmPass = "initos-vm"

// TestVMUnlockMeasure (tier 2, the kernel's TPM driver and resource
// manager, dm-crypt): boot 1 enrolls the default policy (PCR 7 + PCR 15
// = 0), unlocks with the TPM, maps the volume with dm-crypt, measures it
// into PCR 15, and a second unlock is then refused naming PCR 15; boot 2
// of the same machine (TPM state and disk kept) unlocks again, since PCR
// 15 starts at zero on every boot.
func TestVMUnlockMeasure(t *testing.T) {
	img := filepath.Join(t.TempDir(), "luks.img")
	if _, err := luks2.FormatFile(img, 32<<20, []byte(vmPass), luks2.FormatOptions{PBKDF: fastPBKDF}); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{
		TPM:     true,
		Modules: []string{"dm-crypt", "xts", "ecb"},
		Disks:   []vmtest.Disk{{Path: img}},
	})
	vm.Run(t, "^TestGuestEnrollUnlockMeasure$")
	vm.Run(t, "^TestGuestUnlockNextBoot$")
}
