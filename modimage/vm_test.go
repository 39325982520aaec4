package modimage

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// vmParams tell the guest where the verity tree is and what to load.
type vmParams struct {
	Release    string
	RootHash   string
	HashOffset int64
}

const vmParamsPath = "/modimage-vm.json"

// TestVM builds the modules image of the Debian kernel the harness boots
// and, in the VM (vm_guest_test.go), mounts it through dm-verity at /lib
// the way the initrd does and loads a module with a dependency from it.
func TestVM(t *testing.T) {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "no Debian kernel with modules: %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, FileName(k.Version))
	res, err := BuildFile(context.Background(), out, Options{KernelDir: k.ModulesDir, Release: k.Version})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(vmParams{Release: res.Release, RootHash: res.RootHash, HashOffset: res.HashOffset})
	params := filepath.Join(dir, "params.json")
	if err := os.WriteFile(params, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vmtest.Run(t, vmtest.Config{
		Modules: []string{"dm-verity", "squashfs"},
		Disks:   []vmtest.Disk{{Path: out, ReadOnly: true}},
		Files:   map[string]string{vmParamsPath: params},
	})
}
