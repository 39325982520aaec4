package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVMARM64 runs the harness's own guest tests in an arm64 VM: Debian's
// arm64 kernel on qemu's virt machine (TCG, cpu max), the runner and the
// test binary built with GOARCH=arm64, results over the virtio console.
func TestVMARM64(t *testing.T) {
	disk := testDisk(t)
	extra := filepath.Join(t.TempDir(), "extra")
	if err := os.WriteFile(extra, []byte(extraFile), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, Config{
		Arch:  ArchARM64,
		Run:   "^TestGuest(Basics|Disk|Arch)$",
		Disks: []Disk{{Path: disk}},
		Files: map[string]string{"/etc/vmtest-extra": extra},
	})
}

func TestARM64Args(t *testing.T) {
	m := &Machine{cfg: MachineConfig{Arch: ArchARM64, MemoryMB: 1024, Firmware: AAVMFSecureBoot()}, vars: "/m/vars.fd",
		disks: []Disk{{Path: "/m/disk0.img", ReadOnly: true}}}
	args := strings.Join(m.qemuArgs(BootSpec{Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyAMA0"}, "/b", &swtpm{socket: "/s"}), " ")
	for _, want := range []string{
		"-accel tcg -machine virt -cpu max,pauth-impdef=on -m 1024",
		"-serial stdio -device virtio-serial-pci,id=vser0 -chardev file,id=data0,path=/b/output -device virtconsole,chardev=data0,bus=vser0.0",
		"-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.snakeoil.fd -drive if=pflash,format=raw,unit=1,file=/m/vars.fd",
		"-device tpm-tis-device,tpmdev=tpm0",
		"-drive file=/m/disk0.img,format=raw,if=virtio,readonly=on",
		"-kernel /k -append console=ttyAMA0 -initrd /i",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("qemuArgs(arm64) = %s\nwant it to contain %s", args, want)
		}
	}
	if strings.Contains(args, "q35") || strings.Contains(args, "smm") {
		t.Errorf("qemuArgs(arm64) = %s: x86 machine options", args)
	}
}

func TestArchChecks(t *testing.T) {
	for _, tt := range []struct {
		arch, qemu string
		ok         bool
	}{
		{"", "qemu-system-x86_64", true},
		{ArchAMD64, "qemu-system-x86_64", true},
		{ArchARM64, "qemu-system-aarch64", true},
		{"riscv64", "", false},
	} {
		if err := checkArch(tt.arch); (err == nil) != tt.ok {
			t.Errorf("checkArch(%q) = %v, want ok=%v", tt.arch, err, tt.ok)
		}
		if tt.ok && os.Getenv(envQEMU) == "" && os.Getenv(envQEMUARM64) == "" {
			if got := qemuName(tt.arch); got != tt.qemu {
				t.Errorf("qemuName(%q) = %s, want %s", tt.arch, got, tt.qemu)
			}
		}
	}
	if _, err := NewMachine(t.TempDir(), MachineConfig{Arch: "riscv64"}); err == nil || !strings.Contains(err.Error(), `architecture "riscv64"`) {
		t.Errorf("NewMachine(riscv64) = %v, want an architecture error", err)
	}
}

func TestFindKernelARM64(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib/modules/6.1.0-9-arm64")
	for _, p := range []string{filepath.Join(dir, "boot/vmlinuz-6.1.0-9-arm64"), filepath.Join(mods, "modules.dep")} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, err := findKernel(filepath.Join(dir, "boot"), filepath.Join(dir, "lib/modules"), "", "")
	if err != nil || k.Version != "6.1.0-9-arm64" || k.ModulesDir != mods {
		t.Errorf("findKernel(arm64 dir) = %+v, %v, want version 6.1.0-9-arm64 in %s", k, err, mods)
	}
	t.Setenv(envARM64Dir, dir)
	if got, want := StubARM64(), filepath.Join(dir, "usr/lib/systemd/boot/efi/linuxaa64.efi.stub"); got != want {
		t.Errorf("StubARM64() = %s, want %s", got, want)
	}
}
