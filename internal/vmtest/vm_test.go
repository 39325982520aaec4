package vmtest

import (
	"os"
	"path/filepath"
	"testing"
)

const (
	diskMagic = "initos vmtest disk"
	extraFile = "copied by Config.Files\n"
)

// testDisk writes a 1 MiB raw image starting with diskMagic.
func testDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	b := make([]byte, 1<<20)
	copy(b, diskMagic)
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
		Run:   "^TestGuest(Basics|Disk)$",
		Disks: []Disk{{Path: disk}},
		Files: map[string]string{"/etc/vmtest-extra": extra},
	})
	if b, err := os.ReadFile(disk); err != nil || string(b[4096:4096+7]) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Errorf("the guest wrote to the original disk image, want a per-test copy (err %v)", err)
	}
}
