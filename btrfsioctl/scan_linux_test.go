package btrfsioctl

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/internal/testenv"
	"initos/loop"
)

// TestScanDevice (tier 1): a btrfs raid1 over two loop devices mounts from
// one of them only after the other was registered with ScanDevice.
func TestScanDevice(t *testing.T) {
	testenv.RequireRoot(t)
	mkfs := testenv.Tool(t, "mkfs.btrfs")
	btrfs := testenv.Tool(t, "btrfs")
	dir := t.TempDir()
	var devs []string
	for i := range 2 {
		img := filepath.Join(dir, "d"+string(rune('0'+i)))
		if err := os.WriteFile(img, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 256<<20); err != nil {
			t.Fatal(err)
		}
		l, err := loop.Attach(img, loop.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		devs = append(devs, l.Path)
	}
	if out, err := exec.Command(mkfs, append([]string{"-q", "-f", "-d", "raid1", "-m", "raid1"}, devs...)...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	// Forget our devices (only ours: other tests may run), as after a
	// reboot without udev.
	if out, err := exec.Command(btrfs, append([]string{"device", "scan", "--forget"}, devs...)...).CombinedOutput(); err != nil {
		t.Fatalf("btrfs device scan --forget: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount(devs[0], mnt, "btrfs", unix.MS_RDONLY, ""); err == nil {
		unix.Unmount(mnt, 0)
		t.Fatalf("mount %s without the other device succeeded, want a failure", devs[0])
	}
	for _, d := range devs {
		if err := ScanDevice(d); err != nil {
			t.Fatalf("ScanDevice(%s) = %v", d, err)
		}
	}
	if err := unix.Mount(devs[0], mnt, "btrfs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s after ScanDevice = %v", devs[0], err)
	}
	unix.Unmount(mnt, 0)
}

func TestScanDeviceErrors(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat(ControlPath); err != nil {
		testenv.Missing(t, "%s: btrfs module not loaded: %v", ControlPath, err)
	}
	err := ScanDevice("/nonexistent/dev")
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "ioctl(BTRFS_IOC_SCAN_DEV)") {
		t.Errorf("ScanDevice(missing) = %v, want ENOENT from the ioctl", err)
	}
	if err := ScanDevice(strings.Repeat("x", 5000)); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("ScanDevice(long) = %v, want too long", err)
	}
}
