package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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
	} {
		if got := diskArgs(2, tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("diskArgs(%+v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
