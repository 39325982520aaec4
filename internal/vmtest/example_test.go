package vmtest_test

import (
	"testing"

	"initos/internal/vmtest"
)

// A host test booting the package's vmguest tests with dm-verity loaded
// and a disk image attached as /dev/vda.
func ExampleRun() {
	_ = func(t *testing.T) {
		vmtest.Run(t, vmtest.Config{
			Modules: []string{"dm-verity"},
			Disks:   []vmtest.Disk{{Path: "testdata/image.raw", ReadOnly: true}},
		})
	}
}

// A multi-boot scenario: the same disk and TPM state across two boots.
func ExampleVM_Run() {
	_ = func(t *testing.T) {
		vm := vmtest.New(t, vmtest.Config{Disks: []vmtest.Disk{{Path: "testdata/disk.img"}}, TPM: true})
		vm.Run(t, "^TestGuestInstall$")
		vm.Run(t, "^TestGuestUnlockAfterReboot$")
	}
}
