package vmtest

import (
	"os"
	"path/filepath"
	"testing"
)

const (
	diskMagic = "initos vmtest disk"
	usbMagic  = "initos vmtest USB disk"
	extraFile = "copied by Config.Files\n"
)

// testDisk writes a 1 MiB raw image starting with diskMagic.
func testDisk(t *testing.T) string { return magicDisk(t, diskMagic) }

// magicDisk writes a 1 MiB raw image starting with magic.
func magicDisk(t *testing.T, magic string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	b := make([]byte, 1<<20)
	copy(b, magic)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVM(t *testing.T) {
	disk := testDisk(t)
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.WriteFile(extra, []byte(extraFile), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, Config{
		Run:   "^TestGuest(Basics|Disk|USBDisk)$",
		Disks: []Disk{{Path: magicDisk(t, usbMagic), USB: true}, {Path: disk}}, // /dev/sda, /dev/vda
		Files: map[string]string{"/etc/vmtest-extra": extra},
	})
	if b, err := os.ReadFile(disk); err != nil || string(b[4096:4096+7]) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("the guest wrote to the original disk image, want a per-test copy (err %v)", err)
	}
}
