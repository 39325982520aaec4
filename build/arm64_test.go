package build

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"initos/initrd"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
)

// peMachineARM64 is IMAGE_FILE_MACHINE_ARM64.
const peMachineARM64 = 0xaa64

// TestBuildARM64 builds an arm64 host image made of Debian's arm64 kernel
// (scripts/setup.sh unpacks it) and the modules arm64's default early
// modules need: the image's architecture selects arm64's early modules
// (virtio_mmio among them), and the UKI is an arm64 PE on the aa64 stub
// given with Stub, carrying the kernel as it is.
func TestBuildARM64(t *testing.T) {
	k, err := vmtest.FindKernelArch(vmtest.ArchARM64)
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	stub := filepath.Join(vmtest.ARM64Dir(), StubFor("arm64"))
	if _, err := os.Stat(stub); err != nil {
		testenv.Missing(t, "arm64 systemd-stub: %v", err)
	}
	ents := bt.KernelLayer(t, k, "arm64")
	opts := options(t, bt.WriteImageArch(t, "arm64", ents))
	opts.Stub = stub
	m, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != "arm64" || m.Kernel.Release != k.Version || m.Source.Platform != "linux/arm64" {
		t.Errorf("manifest arch %s, kernel %s, platform %s; want arm64, %s, linux/arm64", m.Arch, m.Kernel.Release, m.Source.Platform, k.Version)
	}
	b, err := os.ReadFile(filepath.Join(opts.OutDir, UKIFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint16(b[binary.LittleEndian.Uint32(b[0x3c:])+4:]); got != peMachineARM64 {
		t.Errorf("UKI machine %#x, want %#x (arm64)", got, peMachineARM64)
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if linux := img.Section(".linux"); !bytes.HasPrefix(linux, []byte("MZ")) || int64(len(linux)) != m.Kernel.Size {
		t.Errorf(".linux: %d bytes starting %q, want the kernel (%d bytes, MZ)", len(linux), linux[:min(len(linux), 2)], m.Kernel.Size)
	}
	cfg, err := initrd.ReadConfig(img.Section(".initrd"))
	if err != nil {
		t.Fatal(err)
	}
	if !contains(cfg.EarlyModules, "virtio_mmio") {
		t.Errorf("arm64 early modules %v, want arm64's default set (virtio_mmio)", cfg.EarlyModules)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
