//go:build vmguest

package vmtest

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Guest side of the harness's own tests: run only in the VM, selected by
// the host tests in vm_test.go.

func TestGuestBasics(t *testing.T) {
	if !InGuest() {
		t.Fatalf("InGuest() = false, want true (env %s=%q)", GuestEnv, os.Getenv(GuestEnv))
	}
	if got := os.Getppid(); got != 1 {
		t.Errorf("Getppid() = %d, want 1 (the runner is /init)", got)
	}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{" /proc proc ", " /sys sysfs ", " /dev devtmpfs ", " /tmp tmpfs "} {
		if !bytes.Contains(mounts, []byte(m)) {
			t.Errorf("/proc/self/mounts lacks %q:\n%s", m, mounts)
		}
	}
	if got, err := os.ReadFile("testdata/hello.txt"); err != nil || !strings.HasPrefix(string(got), "hello") {
		t.Errorf("ReadFile(testdata/hello.txt) = %q, %v, want the package's testdata", got, err)
	}
	if got, err := os.ReadFile("/etc/vmtest-extra"); err != nil || string(got) != extraFile {
		t.Errorf("ReadFile(/etc/vmtest-extra) = %q, %v, want %q (Config.Files)", got, err, extraFile)
	}
	if os.Geteuid() != 0 {
		t.Errorf("Geteuid() = %d, want 0", os.Geteuid())
	}
}

func TestGuestDisk(t *testing.T) {
	if _, err := os.Stat("/sys/module/virtio_blk"); err != nil {
		t.Errorf("virtio_blk not loaded: %v", err)
	}
	f, err := os.OpenFile("/dev/vda", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(diskMagic))
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if string(got) != diskMagic {
		t.Errorf("/dev/vda starts with %q, want %q", got, diskMagic)
	}
	if _, err := f.WriteAt([]byte("written by the guest"), 4096); err != nil {
		t.Fatalf("write /dev/vda: %v", err)
	}
}

// TestGuestUSBDisk: a Disk.USB image is /dev/sda, a removable USB disk
// driven by the modules the runner loaded.
func TestGuestUSBDisk(t *testing.T) {
	for _, m := range []string{"xhci_pci", "usb_storage", "sd_mod"} {
		if _, err := os.Stat("/sys/module/" + m); err != nil {
			t.Errorf("%s not loaded: %v", m, err)
		}
	}
	if b, err := os.ReadFile("/sys/block/sda/removable"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Errorf("/sys/block/sda/removable = %q, %v; want 1", b, err)
	}
	if link, err := os.Readlink("/sys/block/sda"); err != nil || !strings.Contains(link, "/usb") {
		t.Errorf("/sys/block/sda -> %q, %v; want a device under a USB bus", link, err)
	}
	b := make([]byte, len(usbMagic))
	f, err := os.Open("/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != usbMagic {
		t.Errorf("/dev/sda starts with %q (%v), want %q", b, err, usbMagic)
	}
}

func TestGuestTPM(t *testing.T) {
	for _, dev := range []string{"/dev/tpm0", "/dev/tpmrm0"} {
		if _, err := os.Stat(dev); err != nil {
			t.Errorf("TPM device: %v", err)
		}
	}
}

func TestGuestEFI(t *testing.T) {
	if _, err := os.Stat("/sys/firmware/efi"); err != nil {
		t.Errorf("booted without UEFI: %v", err)
	}
}

func TestGuestCmdline(t *testing.T) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), bootFuncArg) {
		t.Errorf("/proc/cmdline = %q, want it to contain %q (from the BootFunc)", b, bootFuncArg)
	}
}

// persistOffset is where the multi-boot test writes on /dev/vda.
const persistOffset = 8192

func TestGuestPersistWrite(t *testing.T) {
	f, err := os.OpenFile("/dev/vda", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(persistMagic), persistOffset); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGuestPersistRead(t *testing.T) {
	f, err := os.Open("/dev/vda")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(persistMagic))
	if _, err := f.ReadAt(got, persistOffset); err != nil {
		t.Fatal(err)
	}
	if string(got) != persistMagic {
		t.Errorf("/dev/vda at %d = %q, want %q written by the previous boot", persistOffset, got, persistMagic)
	}
}

// The three tests below are for TestVMReports: they fail on purpose.

func TestGuestFails(t *testing.T) {
	t.Error("this guest test fails on purpose")
}

func TestGuestSkipsWithoutReason(t *testing.T) {
	t.Skip("skipping with no reason the harness accepts")
}

func TestGuestSkipsNotInVM(t *testing.T) {
	t.Skip("not in VM: an accepted reason")
}

// TestGuestArch checks the guest runs the test binary's architecture
// (arm64 under TestVMARM64) and that the harness's console is the
// architecture's serial port.
func TestGuestArch(t *testing.T) {
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"amd64": "console=ttyS0", "arm64": "console=ttyAMA0"}[runtime.GOARCH]
	if !strings.Contains(string(cmdline), want) {
		t.Errorf("/proc/cmdline = %q, want %s (GOARCH %s)", cmdline, want, runtime.GOARCH)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	machine := unix.ByteSliceToString(u.Machine[:])
	if wantM := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]; machine != wantM {
		t.Errorf("uname -m = %s, want %s", machine, wantM)
	}
}
