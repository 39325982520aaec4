package luks2

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"initos/internal/vmtest"
)

// vmPassphrase unlocks the disk TestVM formats for the guest.
const vmPassphrase = "initos-vm"

// TestVM formats a disk image on the host with our code, builds the initos
// CLI, and runs the guest tests (vm_guest_test.go) under qemu: this host's
// kernel has no device-mapper.
func TestVM(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if _, err := FormatFile(img, 48<<20, []byte(vmPassphrase), FormatOptions{Label: "vmtest", PBKDF: fastPBKDF["argon2id"]}); err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(dir, "initos")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", cli, "initos/cmd/initos")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build initos: %v\n%s", err, out)
	}
	vmtest.Run(t, vmtest.Config{
		// xts and ecb back aes-xts-plain64 (aes and cbc are built in).
		Modules: []string{"dm-crypt", "loop", "xts", "ecb"},
		Disks:   []vmtest.Disk{{Path: img}},
		Files:   map[string]string{"/bin/initos": cli},
	})
}
