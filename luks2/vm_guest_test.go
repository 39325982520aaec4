//go:build vmguest

package luks2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
