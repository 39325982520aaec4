package bootdisk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"initos/build"
	"initos/initramfs"
	"initos/initrd"
	"initos/internal/bootdisk/report"
	"initos/internal/vmtest"
)

// The binaries of an arm64 test machine (qemu's virt machine), built once
// per process with GOARCH=arm64.
var (
	InitosInitARM64 = sync.OnceValues(func() ([]byte, error) { return goBuildArch(initosInitPkg, "arm64") })
	RootInitARM64   = sync.OnceValues(func() ([]byte, error) { return goBuildArch(rootInitPkg, "arm64") })
	EnrollInitARM64 = sync.OnceValues(func() ([]byte, error) { return goBuildArch(enrollInitPkg, "arm64") })
)

// enrollModulesARM64 are the enrollment initrd's modules on arm64: the
// virtio disks, and tpm_tis for the TPM on the system bus (qemu's
// tpm-tis-device), a module in Debian's cloud-arm64 kernel.
var enrollModulesARM64 = []string{"virtio_pci", "virtio_blk", "tpm_tis"}

// EnrollUKIARM64 is EnrollUKI for qemu's arm64 virt machine: the arm64
// enrollinit on Debian's arm64 kernel k and aa64 systemd-stub, console on
// the PL011 UART, PCR-signed and Secure-Boot-signed like the production
// UKI.
func EnrollUKIARM64(k vmtest.Kernel, plan report.EnrollPlan, sb *SecureBootKey) ([]byte, error) {
	bin, err := EnrollInitARM64()
	if err != nil {
		return nil, err
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	var a initramfs.Archive
	a.AddFile("init", 0o755, bin)
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	a.AddFile(strings.TrimPrefix(report.EnrollPlanPath, "/"), 0o644, planJSON)
	_, mods, _, err := initrd.ResolveModules(k.ModulesDir, enrollModulesARM64, nil)
	if err != nil {
		return nil, err
	}
	if err := initrd.AddModules(&a, k.ModulesDir, mods); err != nil {
		return nil, err
	}
	var rd bytes.Buffer
	if err := a.WriteTo(&rd, initramfs.Zstd); err != nil {
		return nil, err
	}
	stub, err := os.ReadFile(vmtest.StubARM64())
	if err != nil {
		return nil, fmt.Errorf("aa64 systemd-stub (systemd-boot-efi:arm64, scripts/setup.sh): %w", err)
	}
	linux, err := os.ReadFile(k.Image)
	if err != nil {
		return nil, err
	}
	img, err := build.UKI(build.UKIInputs{
		Stub: stub, Linux: linux, Initrd: rd.Bytes(), Cmdline: "console=ttyAMA0 panic=-1 quiet", Release: k.Version,
		OSRelease: []byte("ID=initos\nNAME=InitOS test\nVERSION_ID=test\n"), PCRKey: PCRKey(),
		SigningKey: sb.Key, SigningCert: sb.Cert,
	})
	if err != nil {
		return nil, err
	}
	return img.Bytes(), nil
}

// EnrollARM64 is Enroll on an arm64 machine: EnrollUKIARM64 as
// EFI/BOOT/BOOTAA64.EFI on ESP partition esp of d, one boot under AAVMF.
func EnrollARM64(ctx context.Context, m *vmtest.Machine, d *Disk, esp int, k vmtest.Kernel, plan report.EnrollPlan, sb *SecureBootKey) (*vmtest.Result, error) {
	img, err := EnrollUKIARM64(k, plan, sb)
	if err != nil {
		return nil, err
	}
	return enrollBoot(ctx, m, d, esp, "EFI/BOOT/BOOTAA64.EFI", img)
}
