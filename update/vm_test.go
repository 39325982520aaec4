package update

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestVM (tier 2, Debian's kernel under qemu): staging on a real GPT disk
// with two FAT32 ESPs found through sysfs, mounted with the kernel's vfat
// (KernelMounter), written with fsync and read back after dropping the
// page cache; and the i6300esb watchdog armed, fed and disarmed.
func TestVM(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	const mib = 40
	gptDisk(t, disk, mib)
	formatESP(t, disk, 1, mib)
	formatESP(t, disk, 2, mib)
	vm := vmtest.New(t, vmtest.Config{
		Modules:  []string{"vfat", "nls_cp437", "nls_ascii", "i6300esb"},
		Disks:    []vmtest.Disk{{Path: disk}},
		Watchdog: true,
		Files: map[string]string{
			"/vmtest/pecoff/testdata/linuxx64.efi.stub": "../pecoff/testdata/linuxx64.efi.stub",
			"/vmtest/authenticode/testdata/db.key":      "../authenticode/testdata/db.key",
			"/vmtest/authenticode/testdata/db.crt":      "../authenticode/testdata/db.crt",
		},
	})
	vm.Run(t, "")
}

// formatESP makes a FAT32 filesystem in partition n (the layout of gptDisk).
func formatESP(t *testing.T, disk string, n int, mib int64) {
	t.Helper()
	mkfs := testenv.Tool(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "fat.img")
	if out, err := exec.Command(mkfs, "-F", "32", "-C", img, strconv.FormatInt(mib<<10, 10)).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, (1<<20)+int64(n-1)*(mib<<20)); err != nil {
		t.Fatal(err)
	}
}
