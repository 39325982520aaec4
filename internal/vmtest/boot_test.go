package vmtest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
)

const (
	persistMagic = "persists across boots"
	bootFuncArg  = "vmtest.bootfunc=1" // added to the command line by a BootFunc
)

// TestVMOVMF boots through UEFI firmware with a TPM: the tier 3 setup
// without Secure Boot (Debian's kernel is not signed by the snakeoil key).
func TestVMOVMF(t *testing.T) {
	vm := New(t, Config{Firmware: OVMF(), TPM: true})
	vm.RunBoot(t, "^TestGuest(EFI|TPM|Cmdline)$", func(kernel, initrd, cmdline string) (BootSpec, error) {
		return BootSpec{Kernel: kernel, Initrd: initrd, Cmdline: cmdline + " " + bootFuncArg}, nil
	})
	if _, err := os.Stat(filepath.Join(vm.Machine.TPMStateDir(), "tpm2-00.permall")); err != nil {
		t.Errorf("swtpm state after a boot: %v", err)
	}
}

// TestVMMultiBoot boots one machine twice: the second boot sees what the
// first wrote to the disk, and gets a TPM again from the same state.
func TestVMMultiBoot(t *testing.T) {
	vm := New(t, Config{Disks: []Disk{{Path: testDisk(t)}}, TPM: true})
	vm.Run(t, "^TestGuestPersistWrite$")
	b, err := os.ReadFile(vm.Machine.DiskPath(0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(persistMagic)) {
		t.Fatalf("machine disk after boot 1 lacks %q", persistMagic)
	}
	vm.Run(t, "^TestGuest(PersistRead|TPM)$")
}

// TestMachineBootKilled checks that a boot that never ends is killed when
// its context ends, and still returns what it has.
func TestMachineBootKilled(t *testing.T) {
	testenv.Tool(t, "qemu-system-x86_64")
	m, err := NewMachine(t.TempDir(), MachineConfig{MemoryMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := m.Boot(ctx, BootSpec{}) // no kernel, no disk: BIOS waits forever
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Boot(no bootable device) error = %v, want context.DeadlineExceeded", err)
	}
	if res == nil || !strings.Contains(res.CommandLine(), "-accel tcg") || res.Elapsed > time.Minute {
		t.Errorf("Boot(no bootable device) result = %+v, want the command line and a quick kill", res)
	}
}

// selfTestEnv makes TestVMFailing run: it is started by TestVMReports in a
// child process, whose output is checked.
const selfTestEnv = "INITOS_VMTEST_SELFTEST"

func TestVMFailing(t *testing.T) {
	if os.Getenv(selfTestEnv) != "1" {
		t.Skip("run by TestVMReports")
	}
	Run(t, Config{Run: "^TestGuest(Fails|SkipsWithoutReason|SkipsNotInVM)$"})
}

// TestVMReports checks how guest failures and skips reach the host.
func TestVMReports(t *testing.T) {
	testenv.Tool(t, "qemu-system-x86_64")
	if InGuest() {
		t.Skip("not in VM: host-only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVMFailing$", "-test.v")
	cmd.Env = append(os.Environ(), selfTestEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("TestVMFailing passed, want it to fail:\n%s", out)
	}
	for _, want := range []string{
		"--- FAIL: TestVMFailing/TestGuestFails",
		"guest_test.go", "this guest test fails on purpose",
		"--- FAIL: TestVMFailing/TestGuestSkipsWithoutReason",
		"--- SKIP: TestVMFailing/TestGuestSkipsNotInVM",
		"vmtest: qemu command line", "qemu-system-x86_64 -accel tcg",
		"vmtest: console tail:", "INITOS-VMTEST: exit 1",
		"vmtest: boot took",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("TestVMFailing output lacks %q:\n%s", want, out)
		}
	}
}

// TestMachineSecureBootStarts checks that qemu accepts the Secure Boot
// machine (q35, SMM, secure pflash, snakeoil vars): it must still be
// running, waiting for a bootable disk, when the context ends.
func TestMachineSecureBootStarts(t *testing.T) {
	testenv.Tool(t, "qemu-system-x86_64")
	fw := OVMFSecureBoot()
	if _, err := os.Stat(fw.Code); err != nil {
		testenv.Missing(t, "ovmf is not installed: %v", err)
	}
	m, err := NewMachine(t.TempDir(), MachineConfig{MemoryMB: 256, Firmware: fw})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := m.Boot(ctx, BootSpec{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Boot(Secure Boot OVMF, no disk) = %v, want qemu still running at the deadline\n%s\n%s", err, res.CommandLine(), res.Stderr)
	}
}
