package vmtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNewMachine(t *testing.T) {
	src := t.TempDir()
	raw, qcow, vars := filepath.Join(src, "raw.img"), filepath.Join(src, "q.qcow2"), filepath.Join(src, "vars.fd")
	writeFile(t, raw, "raw disk")
	writeFile(t, qcow, "QFI\xfbqcow2 disk")
	writeFile(t, vars, "variables")
	fw := &Firmware{Code: "/fw/CODE.fd", Vars: vars, SecureBoot: true}
	m, err := NewMachine(filepath.Join(t.TempDir(), "m"), MachineConfig{
		Disks: []Disk{{Path: raw}, {Path: qcow, ReadOnly: true}}, TPM: true, Firmware: fw,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The machine owns copies: changing them leaves the originals alone.
	if err := os.WriteFile(m.DiskPath(0), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(raw); string(b) != "raw disk" {
		t.Errorf("original disk = %q after writing the machine's copy, want unchanged", b)
	}
	if b, _ := os.ReadFile(m.VarsPath()); string(b) != "variables" {
		t.Errorf("machine vars = %q, want a copy of %s", b, vars)
	}
	if fi, err := os.Stat(m.TPMStateDir()); err != nil || !fi.IsDir() {
		t.Errorf("TPM state dir: %v", err)
	}

	tpm := &swtpm{socket: "/run/x/swtpm.sock"}
	args := strings.Join(m.qemuArgs(BootSpec{Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyS0"}, "/b", tpm), " ")
	for _, want := range []string{
		"-accel tcg -cpu max -m 1024 ",
		"-serial stdio -serial file:/b/output",
		"-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on",
		"-drive if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd -drive if=pflash,format=raw,unit=1,file=" + m.VarsPath(),
		"-chardev socket,id=chrtpm,path=/run/x/swtpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0",
		"-drive file=" + m.DiskPath(0) + ",format=raw,if=none,id=disk0 -device virtio-blk-pci,drive=disk0 -drive file=" + m.DiskPath(1) + ",format=qcow2,readonly=on,if=none,id=disk1 -device virtio-blk-pci,drive=disk1",
		"-kernel /k -append console=ttyS0 -initrd /i",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemuArgs() = %s\nwant it to contain %s", args, want)
		}
	}
	if strings.Contains(args, "kvm") {
		t.Errorf("qemuArgs() = %s, want no KVM", args)
	}

	// Booting from disk: no -kernel; no firmware, no TPM: none of their options.
	m2, err := NewMachine(t.TempDir(), MachineConfig{MemoryMB: 256})
	if err != nil {
		t.Fatal(err)
	}
	args2 := m2.qemuArgs(BootSpec{QEMUArgs: []string{"-smp", "2"}}, "/b", nil)
	for _, bad := range []string{"-kernel", "-machine", "-tpmdev", "-drive"} {
		if slices.Contains(args2, bad) {
			t.Errorf("qemuArgs(plain machine, disk boot) = %q, want no %s", args2, bad)
		}
	}
	if !slices.Contains(args2, "256") || args2[len(args2)-1] != "2" {
		t.Errorf("qemuArgs(MemoryMB 256, QEMUArgs -smp 2) = %q", args2)
	}
}

func TestNewMachineMissingDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	_, err := NewMachine(dir, MachineConfig{Disks: []Disk{{Path: filepath.Join(dir, "nope.img")}}})
	if err == nil || !strings.Contains(err.Error(), "copy disk 0") {
		t.Errorf("NewMachine(missing disk) = %v, want an error naming disk 0", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "disk*")); len(m) != 0 {
		t.Errorf("NewMachine(missing disk) left %q", m)
	}
}
