package tpm2

import (
	"os"
	"path/filepath"
	"testing"

	"initos/internal/vmtest"
)

// PCR 11 as the real systemd-stub measures it, signed policies across UKI
// upgrades and Secure Boot on/off are proven under firmware in
// uki/firmware_test.go (TestFirmwarePCRPolicies).

// TestVMPCR7AcrossBoots (tier 3): in a VM booted through OVMF with a swtpm,
// a key sealed to PCR 7 on boot 1 unseals on boot 2 of the same machine,
// and is refused on a boot whose firmware variable store (and so PCR 7,
// which measures PK/KEK/db/dbx) differs, with the same TPM state and disk.
func TestVMPCR7AcrossBoots(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{Firmware: vmtest.OVMF(), TPM: true, Disks: []vmtest.Disk{{Path: disk}}})
	vm.Run(t, "^TestGuestSeal$")
	vm.Run(t, "^TestGuestUnseal$")

	other := &vmtest.Firmware{Code: vmtest.OVMF().Code, Vars: "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"}
	vm2 := vmtest.New(t, vmtest.Config{Firmware: other, TPM: true, Disks: []vmtest.Disk{{Path: vm.Machine.DiskPath(0)}}})
	copyDir(t, vm.Machine.TPMStateDir(), vm2.Machine.TPMStateDir())
	vm2.Run(t, "^TestGuestUnsealRefused$")
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
