package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCopyFileSparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	b := make([]byte, 4<<20)
	copy(b[1<<20:], "data in the middle")
	b[len(b)-1] = 1
	os.WriteFile(src, b, 0o644)
	dst := filepath.Join(dir, "dst")
	if err := copyFile(dst, src); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, b) {
		t.Fatalf("copyFile: content differs")
	}
	var st unix.Stat_t
	unix.Stat(dst, &st)
	if st.Blocks*512 >= int64(len(b)) {
		t.Errorf("copyFile: %d bytes allocated for a mostly empty %d-byte file, want holes", st.Blocks*512, len(b))
	}
}

func TestDiskArgs(t *testing.T) {
	for _, tc := range []struct {
		d    Disk
		want []string
	}{
		{Disk{Path: "/x/d.img"}, []string{"-drive", "file=/x/d.img,format=raw,if=none,id=disk2", "-device", "virtio-blk-pci,drive=disk2"}},
		{Disk{Path: "/x,y/d.img", ReadOnly: true}, []string{"-drive", "file=/x,,y/d.img,format=raw,readonly=on,if=none,id=disk2", "-device", "virtio-blk-pci,drive=disk2"}},
		{Disk{Path: "/x/d.img", Serial: "abc"}, []string{"-drive", "file=/x/d.img,format=raw,if=none,id=disk2", "-device", "virtio-blk-pci,drive=disk2,serial=abc"}},
		{Disk{Path: "/x/usb.img", USB: true}, []string{"-drive", "file=/x/usb.img,format=raw,if=none,id=disk2", "-device", "usb-storage,bus=xhci.0,removable=on,drive=disk2"}},
	} {
		if got := diskArgs(2, tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("diskArgs(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestDiskNodes(t *testing.T) {
	disks := []Disk{{USB: true}, {}, {}, {USB: true}}
	want := []string{"/dev/sda", "/dev/vda", "/dev/vdb", "/dev/sdb"}
	if got := diskNodes(disks); !slices.Equal(got, want) {
		t.Errorf("diskNodes(%+v) = %q, want %q", disks, got, want)
	}
}

func TestMachineUSBDisk(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewMachine(filepath.Join(dir, "m"), MachineConfig{Disks: []Disk{{Path: img, USB: true}, {Path: img}, {Path: img, USB: true}}})
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(m.qemuArgs(BootSpec{}, "/b", nil), " ")
	if n := strings.Count(args, "qemu-xhci"); n != 1 || !strings.Contains(args, "-device qemu-xhci,id=xhci -drive file="+m.DiskPath(0)) {
		t.Errorf("qemuArgs() = %s, want one qemu-xhci controller before the first USB disk", args)
	}
	_, err = NewMachine(filepath.Join(dir, "a"), MachineConfig{Arch: ArchARM64, Disks: []Disk{{Path: img, USB: true}}})
	if want := "disk 0: USB disks are amd64 only"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("NewMachine(arm64, USB disk) = %v, want %q", err, want)
	}
}
