//go:build vmguest

package dm

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"initos/loop"
)

const blockSize = 4096

// randomFile writes n deterministic pseudo-random bytes to a new file.
func randomFile(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'i', 'n', 'i', 't', 'o', 's'})
	r.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func attachLoop(t *testing.T, path string, readOnly bool) *loop.Device {
	t.Helper()
	d, err := loop.Attach(path, loop.Config{ReadOnly: readOnly, Autoclear: true})
	if err != nil {
		t.Fatalf("loop.Attach(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// zeroLoop attaches a zero-filled backing file of size bytes to a loop
// device, detached at the end of the test.
func zeroLoop(t *testing.T, size int) *loop.Device {
	t.Helper()
	backing := filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return attachLoop(t, backing, false)
}

func create(t *testing.T, name string, readOnly bool, targets ...Target) string {
	t.Helper()
	node, err := CreateDevice(name, "", readOnly, targets...)
	if err != nil {
		t.Fatalf("CreateDevice(%s): %v", name, err)
	}
	t.Cleanup(func() { remove(t, name) })
	return node
}

// remove removes name if it still exists.
func remove(t *testing.T, name string) {
	t.Helper()
	if err := RemoveDevice(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RemoveDevice(%s): %v", name, err)
	}
}

// directBuf is a page-aligned buffer for O_DIRECT I/O.
func directBuf(t *testing.T, n int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b
}

// readBlocks reads every block of path with O_DIRECT (no readahead mixes
// blocks) and returns each block's data or error.
func readBlocks(t *testing.T, path string, blocks int) ([][]byte, []error) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := directBuf(t, blockSize)
	data, errs := make([][]byte, blocks), make([]error, blocks)
	for i := range blocks {
		if _, errs[i] = f.ReadAt(buf, int64(i)*blockSize); errs[i] == nil {
			data[i] = bytes.Clone(buf)
		}
	}
	return data, errs
}

func writeDirect(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := directBuf(t, len(data))
	copy(buf, data)
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGuestVersion(t *testing.T) {
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Version()
	if err != nil || v[0] != 4 {
		t.Fatalf("Version() = %v, %v, want 4.x", v, err)
	}
	t.Logf("dm ioctl interface %d.%d.%d", v[0], v[1], v[2])
	if _, err := c.Info("no-such-device"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Info(no-such-device) = %v, want fs.ErrNotExist", err)
	}
}

// TestGuestManyDevices creates and removes 100 devices; nothing is left.
func TestGuestManyDevices(t *testing.T) {
	l := zeroLoop(t, 64<<10)
	t.Cleanup(func() {
		for i := range 100 {
			remove(t, fmt.Sprintf("many-%d", i))
		}
	})
	for round := range 2 {
		for i := range 100 {
			name := fmt.Sprintf("many-%d", i)
			if _, err := CreateDevice(name, "UUID-"+name, false, Linear{Length: 128, Device: l.Path}); err != nil {
				t.Fatalf("round %d: CreateDevice(%s): %v", round, name, err)
			}
			if round == 0 { // create and remove one by one
				if err := RemoveDevice(name); err != nil {
					t.Fatalf("RemoveDevice(%s): %v", name, err)
				}
			}
		}
		if round == 1 { // 100 alive at once, then remove them all
			c, err := Open()
			if err != nil {
				t.Fatal(err)
			}
			devs, err := c.List()
			c.Close()
			if err != nil || len(devs) != 100 || devs[0].UUID == "" {
				t.Fatalf("List() = %d devices (%v), want 100 with UUIDs", len(devs), err)
			}
			for i := range 100 {
				if err := RemoveDevice(fmt.Sprintf("many-%d", i)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	assertNoDevices(t)
}

// assertNoDevices checks the device list is empty and /dev/mapper holds
// only the control node.
func assertNoDevices(t *testing.T) {
	t.Helper()
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if devs, err := c.List(); err != nil || len(devs) != 0 {
		t.Errorf("List() = %v, %v, want no devices", devs, err)
	}
	ents, err := os.ReadDir(mapperDir)
	if err != nil || len(ents) != 1 || ents[0].Name() != "control" {
		t.Errorf("ls %s = %v, %v, want only control", mapperDir, ents, err)
	}
}

// TestGuestRejectedTable: the kernel's refusal comes back with its log
// message, and no device is left behind.
func TestGuestRejectedTable(t *testing.T) {
	dataPath, hashPath, _, r := formatVerity(t)
	dl, hl := attachLoop(t, dataPath, true), attachLoop(t, hashPath, true)
	v := verityFor(r, dl.Path, hl.Path)
	short := v
	short.RootDigest = []byte{1, 2, 3}
	tests := []struct {
		name     string
		readOnly bool
		target   Target
		kernel   string // in the kernel's message
	}{
		{"writable verity", false, v, "Device must be readonly"},
		{"short root digest", true, short, "Invalid root digest"},
		{"unknown target", true, Spec{Length: 8, Kind: "no-such-target"}, "unknown target type"},
		{"missing device", false, Linear{Length: 8, Device: "/dev/does-not-exist"}, "Device lookup failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CreateDevice("bad", "", tt.readOnly, tt.target)
			if err == nil {
				remove(t, "bad")
				t.Fatalf("CreateDevice(%v) = nil error, want the kernel's refusal", tt.target)
			}
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Path != "bad" || !strings.Contains(err.Error(), "ioctl(DM_TABLE_LOAD)") {
				t.Errorf("error %q: want an *os.PathError for bad from ioctl(DM_TABLE_LOAD)", err)
			}
			t.Logf("CreateDevice: %v", err)
			if !strings.Contains(err.Error(), tt.kernel) {
				t.Errorf("error %q: want the kernel's message %q", err, tt.kernel)
			}
			assertNoDevices(t)
		})
	}
}

// TestGuestDuplicateName: creating an existing name fails with EBUSY and
// leaves the existing device alone.
func TestGuestDuplicateName(t *testing.T) {
	l := zeroLoop(t, 64<<10)
	create(t, "dup", false, Linear{Length: 128, Device: l.Path})
	_, err := CreateDevice("dup", "", false, Linear{Length: 128, Device: l.Path})
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("second CreateDevice(dup) = %v, want EBUSY", err)
	}
	if _, err := os.Stat(NodePath("dup")); err != nil {
		t.Errorf("the first dup device's node is gone: %v", err)
	}
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if info, err := c.Info("dup"); err != nil || !info.LiveTable {
		t.Errorf("Info(dup) = %+v, %v, want the first device live", info, err)
	}
}

// TestGuestNodes checks both kinds of node: mknod without udev, the
// udev-style symlink when udev is (pretended to be) running.
func TestGuestNodes(t *testing.T) {
	l := zeroLoop(t, 64<<10)
	node := create(t, "node-mknod", false, Linear{Length: 128, Device: l.Path})
	if st, err := os.Lstat(node); err != nil || st.Mode()&fs.ModeDevice == 0 || st.Mode()&fs.ModeCharDevice != 0 {
		t.Errorf("Lstat(%s) = %v, %v, want a block device node", node, st, err)
	}

	fake := filepath.Join(t.TempDir(), "udev-control")
	if err := os.WriteFile(fake, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := udevControl
	udevControl = fake
	t.Cleanup(func() { udevControl = old })
	node = create(t, "node-udev", false, Linear{Length: 128, Device: l.Path})
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info("node-udev")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("../dm-%d", info.Minor)
	if got, err := os.Readlink(node); err != nil || got != want {
		t.Errorf("Readlink(%s) = %q, %v, want %q", node, got, err, want)
	}
	if _, err := os.Stat(node); err != nil {
		t.Errorf("Stat(%s): %v", node, err)
	}
}

// TestGuestRemoveBusy: Remove waits out a short-lived opener (EBUSY).
func TestGuestRemoveBusy(t *testing.T) {
	l := zeroLoop(t, 64<<10)
	node := create(t, "busy", false, Linear{Length: 128, Device: l.Path})
	f, err := os.Open(node)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(300 * time.Millisecond)
		f.Close()
	}()
	if err := RemoveDevice("busy"); err != nil {
		t.Errorf("RemoveDevice(busy) while open for 300ms: %v, want success after retries", err)
	}
	<-done
	assertNoDevices(t)
}

// TestGuestControlNode: Open makes /dev/mapper/control from sysfs when
// it is missing (an initramfs /dev without devtmpfs or udev).
func TestGuestControlNode(t *testing.T) {
	if err := os.Remove(ControlPath); err != nil {
		t.Fatal(err)
	}
	c, err := Open()
	if err != nil {
		t.Fatalf("Open() without a control node: %v", err)
	}
	defer c.Close()
	if v, err := c.Version(); err != nil || v[0] != 4 {
		t.Errorf("Version() = %v, %v, want 4.x", v, err)
	}
	if st, err := os.Stat(ControlPath); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("Stat(%s) = %v, %v, want a character device", ControlPath, st, err)
	}
}
