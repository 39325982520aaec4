package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"initos/internal/installtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVM runs the installer in VMs (device-mapper, btrfs, efivarfs under
// OVMF, a TPM) against blank virtio disks; vm_guest_test.go is the guest
// side.
//
//   - One disk: the power is cut right after each step that writes
//     (one boot per step: the guest's unsynced writes are lost), each
//     boot continuing what the last left; then a boot completes the
//     install, finds a rerun changes nothing, and checks the result. These
//     boots are direct (no firmware, no TPM: a few seconds each); the
//     boot entries go to a directory and the volumes open with the
//     recovery key.
//   - Two disks, OVMF and swtpm: one boot installs and checks two ESP
//     pairs, two LUKS2 volumes opened by the TPM and by the recovery key,
//     btrfs raid1, and `initos efi boot list` showing InitOS A and B on
//     the partitions the GPT holds.
func TestVM(t *testing.T) {
	if testing.Short() {
		t.Skip("VM test: skipped with -short")
	}
	if vmtest.InGuest() {
		t.Skip("not in VM: TestVM boots VMs from the host")
	}
	dir := t.TempDir()
	fx := newFixture(t, filepath.Join(dir, "fx"))
	files := guestFiles(t, fx, dir)
	base := vmtest.Config{
		Modules: []string{"dm-crypt", "xts", "ecb", "crc32c_generic", "btrfs"},
		Files:   files,
	}
	t.Run("one disk with power cuts", func(t *testing.T) {
		cfg := base // direct boot (PVH), no TPM: fast boots, one per cut
		cfg.Disks = []vmtest.Disk{{Path: blankDisk(t, dir, "a", 1<<30), Serial: "install-a"}, {Path: blankDisk(t, dir, "key", 1<<20)}}
		cfg.Cmdline = "initos.test.disks=virtio-install-a"
		vm := vmtest.New(t, cfg)
		for _, step := range Steps[3:] {
			vm.RunCut(t, "^TestGuestCut$/^"+step+"$")
		}
		vm.Run(t, "^TestGuest(Install|Verify)$")
	})
	t.Run("two disks", func(t *testing.T) {
		cfg := base
		cfg.TPM, cfg.Firmware = true, vmtest.OVMF()
		cfg.Modules = append(cfg.Modules[:len(cfg.Modules):len(cfg.Modules)], "efivarfs")
		cfg.Disks = []vmtest.Disk{{Path: blankDisk(t, dir, "a", 1<<30), Serial: "install-a"},
			{Path: blankDisk(t, dir, "b", 1<<30), Serial: "install-b"}, {Path: blankDisk(t, dir, "key", 1<<20)}}
		cfg.Cmdline = "initos.test.disks=virtio-install-a,virtio-install-b"
		vmtest.New(t, cfg).Run(t, "^TestGuest(Install|Verify)$")
	})
}

// blankDisk makes a sparse zero disk image.
func blankDisk(t *testing.T, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "blank-"+name+".img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// guestFiles maps what the guest needs to host files: the fixture under
// /fx, the initos CLI as /bin/initos, and mkfs.btrfs and btrfs from
// btrfs-progs with their shared libraries (the harness initramfs has no C
// tools; the installer environment does).
func guestFiles(t *testing.T, fx *fixture, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	filepath.Walk(fx.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(fx.Dir, p)
			files["/fx/"+rel] = p
		}
		return nil
	})
	for _, tool := range []string{"mkfs.btrfs", "btrfs"} {
		for guest, host := range installtest.WithLibraries(t, testenv.Tool(t, tool)) {
			files[guest] = host
		}
	}
	cli := filepath.Join(dir, "initos")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", cli, "initos/cmd/initos")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build initos: %v\n%s", err, out)
	}
	files["/bin/initos"] = cli
	return files
}
