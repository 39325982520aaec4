//go:build vmguest

package luks2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const vmDisk = "/dev/vda"

// openWithLibrary unlocks /dev/vda and maps it as name with our code.
func openWithLibrary(t *testing.T, name string) string {
	t.Helper()
	return openDisk(t, vmDisk, name)
}

// openDisk unlocks disk and maps it as name with our code.
func openDisk(t *testing.T, disk, name string) string {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		t.Fatalf("ReadHeader(%s) = %v", disk, err)
	}
	vk, _, err := h.Unlock(f, []byte(vmPassphrase))
	if err != nil {
		t.Fatalf("Unlock = %v", err)
	}
	defer vk.Destroy()
	node, err := h.Activate(name, disk, vk, ActivateOptions{})
	if err != nil {
		t.Fatalf("Activate(%s) = %v", name, err)
	}
	return node
}

func writeSync(t *testing.T, node string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(node, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, vmDataOffset); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func readBack(t *testing.T, node string, n int) []byte {
	t.Helper()
	f, err := os.Open(node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, vmDataOffset); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGuestLibraryOpen writes through a mapping made by the library, closes
// it, reopens it and reads the data back; the disk holds only ciphertext.
func TestGuestLibraryOpen(t *testing.T) {
	data := vmPattern()
	node := openWithLibrary(t, "luksvm")
	writeSync(t, node, data)
	if err := Deactivate("luksvm"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(vmDisk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, data[:4096]) {
		t.Errorf("plaintext found on %s", vmDisk)
	}
	node = openWithLibrary(t, "luksvm")
	defer Deactivate("luksvm")
	if got := readBack(t, node, len(data)); !bytes.Equal(got, data) {
		t.Errorf("data read back after close/reopen differs")
	}
}

// TestGuestCLIOpen maps the volume with `initos luks open`, writes, closes
// with `initos luks close`, reopens with the library and reads back.
func TestGuestCLIOpen(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte(vmPassphrase), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/initos", "luks", "open", "--key-file", key, vmDisk, "clivm").CombinedOutput()
	if err != nil {
		t.Fatalf("initos luks open: %v\n%s", err, out)
	}
	node := strings.TrimSpace(string(out))
	data := vmPattern()[:256<<10]
	writeSync(t, node, data)
	if out, err := exec.Command("/bin/initos", "luks", "close", "clivm").CombinedOutput(); err != nil {
		t.Fatalf("initos luks close: %v\n%s", err, out)
	}
	if _, err := os.Stat(node); err == nil {
		t.Errorf("%s still exists after close", node)
	}
	node = openWithLibrary(t, "clivm2")
	defer Deactivate("clivm2")
	if got := readBack(t, node, len(data)); !bytes.Equal(got, data) {
		t.Errorf("data written via the CLI mapping differs when read back")
	}
	out, err = exec.Command("/bin/initos", "luks", "open", "--key-file", "/dev/null", vmDisk, "bad").CombinedOutput()
	if err == nil {
		t.Errorf("initos luks open with a wrong key succeeded: %s", out)
	}
}

// TestGuestCryptsetupVolume maps the cryptsetup-formatted /dev/vdb with our
// dm-crypt table and reads the pattern the host encrypted the way dm-crypt
// does for LUKS2: our table matches cryptsetup's layout and IV scheme.
func TestGuestCryptsetupVolume(t *testing.T) {
	node := openDisk(t, "/dev/vdb", "theirs")
	defer Deactivate("theirs")
	want := vmPattern()
	if got := readBack(t, node, len(want)); !bytes.Equal(got, want) {
		t.Errorf("pattern read through our mapping of the cryptsetup volume differs")
	}
}

// vmFSDisk is the third disk: a LUKS2 volume TestVM formats for the file
// system test.
const vmFSDisk = "/dev/vdc"

// cliOpen maps disk as name with `initos luks open` and returns the node.
func cliOpen(t *testing.T, disk, name string) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte(vmPassphrase), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/initos", "luks", "open", "--key-file", key, disk, name).CombinedOutput()
	if err != nil {
		t.Fatalf("initos luks open %s %s: %v\n%s", disk, name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// cliClose removes the mapping name with `initos luks close`.
func cliClose(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("/bin/initos", "luks", "close", name).CombinedOutput(); err != nil {
		t.Fatalf("initos luks close %s: %v\n%s", name, err, out)
	}
}

// mountFAT mounts the vfat file system on node at a new directory.
func mountFAT(t *testing.T, node string, flags uintptr) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(node, dir, "vfat", flags, ""); err != nil {
		t.Fatalf("mount %s on %s: %v", node, dir, err)
	}
	return dir
}

func unmount(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
}

// TestGuestCLIFilesystem puts a FAT file system on a mapping made by
// `initos luks open`, writes a file through it, closes the mapping, reopens
// it and reads the file back; the raw disk holds no plaintext of it.
func TestGuestCLIFilesystem(t *testing.T) {
	img, err := os.ReadFile(vmFATImage)
	if err != nil {
		t.Fatal(err)
	}
	node := cliOpen(t, vmFSDisk, "fsvm")
	f, err := os.OpenFile(node, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(img, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("initos luks file system test\n"), 1000)
	dir := mountFAT(t, node, 0)
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	unmount(t, dir)
	cliClose(t, "fsvm")
	raw, err := os.ReadFile(vmFSDisk)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, want[:64]) {
		t.Errorf("plaintext of hello.txt found on %s", vmFSDisk)
	}
	node = cliOpen(t, vmFSDisk, "fsvm")
	defer cliClose(t, "fsvm")
	dir = mountFAT(t, node, unix.MS_RDONLY)
	defer unmount(t, dir)
	got, err := os.ReadFile(filepath.Join(dir, "hello.txt"))
	if err != nil {
		t.Fatalf("read hello.txt after close/reopen: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("hello.txt after close/reopen: %d bytes differing from the %d written", len(got), len(want))
	}
}
