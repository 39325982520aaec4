package bootdisk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"initos/initramfs"
	"initos/initrd"
	"initos/internal/bootdisk/report"
	"initos/internal/vmtest"
)

const enrollInitPkg = "initos/internal/bootdisk/enrollinit"

// EnrollInit returns the enrollment boot's /init, built once per process.
var EnrollInit = sync.OnceValues(func() ([]byte, error) { return goBuild(enrollInitPkg) })

// EnrollUKI builds the UKI of a test machine's first boot: enrollinit as
// /init with the virtio modules and plan, on kernel k, PCR-signed and
// Secure-Boot-signed like the production UKI, so PCR 7 and the signed
// policy are those of the real boots.
func EnrollUKI(k vmtest.Kernel, plan report.EnrollPlan, sb *SecureBootKey) ([]byte, error) {
	bin, err := EnrollInit()
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
	_, mods, _, err := initrd.ResolveModules(k.ModulesDir, []string{"virtio_pci", "virtio_blk"}, nil)
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
	return UKI(k.Image, rd.Bytes(), "console=ttyS0 panic=-1 no_timer_check quiet", k.Version, sb)
}

// Enroll runs the first boot of machine m: EnrollUKI for plan on ESP
// partition esp of disk d (the firmware's boot disk), one boot, and
// checks that every volume was enrolled. The caller then puts the
// production UKI back.
func Enroll(ctx context.Context, m *vmtest.Machine, d *Disk, esp int, k vmtest.Kernel, plan report.EnrollPlan, sb *SecureBootKey) (*vmtest.Result, error) {
	img, err := EnrollUKI(k, plan, sb)
	if err != nil {
		return nil, err
	}
	return enrollBoot(ctx, m, d, esp, "EFI/BOOT/BOOTX64.EFI", img)
}

// enrollBoot puts the enrollment UKI img at path on ESP partition esp of
// d, boots m once and checks the enrollment report.
func enrollBoot(ctx context.Context, m *vmtest.Machine, d *Disk, esp int, path string, img []byte) (*vmtest.Result, error) {
	if err := d.PutFile(esp, path, img); err != nil {
		return nil, err
	}
	res, err := m.Boot(ctx, vmtest.BootSpec{})
	if err != nil {
		return res, fmt.Errorf("enrollment boot: %w", err)
	}
	console := string(res.Console)
	i := strings.LastIndex(console, report.EnrollMarker)
	if i < 0 {
		return res, fmt.Errorf("enrollment boot: no %q line on the console", strings.TrimSpace(report.EnrollMarker))
	}
	if line, _, _ := strings.Cut(console[i+len(report.EnrollMarker):], "\n"); strings.TrimSpace(line) != "OK" {
		return res, fmt.Errorf("enrollment boot: %s", strings.TrimSpace(line))
	}
	return res, nil
}

// RootReport returns what the root's init (rootinit) reported on a boot's
// console, logging when it ran and the initrd's log; it fails t when there
// is no report and marks the init's own errors.
func RootReport(t testing.TB, console []byte) *report.Report {
	t.Helper()
	r, err := report.Find(console)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("root init ran %.2fs after the kernel started; initrd log:\n%s", r.Uptime, strings.Join(r.Kmsg, "\n"))
	if len(r.Errors) > 0 {
		t.Errorf("root init errors: %q", r.Errors)
	}
	return r
}
