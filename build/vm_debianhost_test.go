//go:build !vmguest

package build_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"initos/build"
	"initos/images/imagestest"
	"initos/internal/bootdisk"
	"initos/internal/bootdisk/report"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// multiUser is what systemd prints on the console once multi-user.target
// is reached (colour codes removed).
var multiUser = []byte("Reached target multi-user.target")

// ansi matches the colour codes of systemd's status lines.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestVMDebianhost boots debianhost from a disk made of `initos build`'s
// outputs: the UKI and the modules image on ESP A, the image pulled into
// btrfs (package image) on a LUKS2 volume. OVMF with Secure Boot (OVMF's
// snakeoil db key signs the UKI) and swtpm; a first boot enrolls the
// volume to the TPM (bootdisk.Enroll), then initos-init unseals it,
// mounts the modules image through dm-verity, switches into debianhost,
// and systemd reaches multi-user.target. Then, on the same machine, the
// subtest debianui (testDebianui) boots debianui to multi-user.target with
// its VNC server and noVNC answering.
func TestVMDebianhost(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM twice")
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy", "mkfs.btrfs", "swtpm", "ssh-keygen"} {
		testenv.Tool(t, tool)
	}
	testenv.RequireRoot(t)
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	src := imagestest.Build(t, "debianhost")
	sb := bootdisk.Snakeoil(t)
	dir := t.TempDir()
	m, out := buildForVM(t, src, dir, sb, "console=ttyS0 panic=-1 no_timer_check")
	root := filepath.Join(dir, "root.btrfs")
	// SSH host keys made here, no serial getty (provisionRoot).
	if err := bootdisk.BuildRoot(context.Background(), []string{root}, 1400, bootdisk.RootSpec{Image: src, Edit: provisionRoot}); err != nil {
		t.Fatal(err)
	}
	disk, err := bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{
		{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 200}, {Name: "InitOS ESP B", Type: bootdisk.TypeESP, MiB: 32},
		{Name: "InitOS LUKS", Type: bootdisk.TypeLUKS, MiB: 16 + debianuiRootMiB}, // debianhost's 1400, then debianui's
	})
	if err != nil {
		t.Fatal(err)
	}
	vol := bootdisk.NewVolume(0, 3, "5d2b7c0e-3f6a-4e1b-9c8d-7a6b5c4d3e2f", "debianhost")
	if _, err := vol.Format([]*bootdisk.Disk{disk}); err != nil {
		t.Fatal(err)
	}
	err = disk.FormatESP(1, "ESP-A", map[string][]byte{
		"EFI/Linux/initos.efi": out[build.UKIFile], m.ModulesImage.ESPPath: out[m.ModulesImage.File],
	})
	if err != nil {
		t.Fatal(err)
	}
	vm := vmtest.New(t, vmtest.Config{Firmware: vmtest.OVMFSecureBoot(), TPM: true, MemoryMB: 1536, Disks: []vmtest.Disk{{Path: disk.Path}}})
	d := &bootdisk.Disk{Path: vm.Machine.DiskPath(0), Parts: disk.Parts}
	ctx, cancel := context.WithTimeout(context.Background(), scaled(6*time.Minute))
	res, err := bootdisk.Enroll(ctx, vm.Machine, d, 1, k, report.EnrollPlan{Volumes: []report.EnrollVolume{{Device: "/dev/vda3", Pass: string(vol.Pass), Bind: true}}}, sb)
	cancel()
	if err != nil {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Fatal(err)
	}
	if err := vol.SaveHeader([]*bootdisk.Disk{d}); err != nil {
		t.Fatal(err)
	}
	if err := d.Install(3, vol, root); err != nil {
		t.Fatal(err)
	}
	os.Remove(root)
	if err := d.PutFile(1, "EFI/BOOT/BOOTX64.EFI", out[build.UKIFile]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), scaled(10*time.Minute))
	defer cancel()
	w := &watch{want: multiUser, found: cancel}
	if w.file, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	defer w.file.Close()
	t.Logf("console of the debianhost boot: %s", w.file.Name())
	res, err = vm.Machine.Boot(ctx, vmtest.BootSpec{Console: w})
	if !w.seen() {
		if res != nil {
			t.Logf("console:\n%s", res.Console)
		}
		t.Errorf("debianhost did not reach multi-user.target: %v", err) // debianui's boot is independent of it
	} else {
		for _, want := range [][]byte{[]byte("modules: " + m.ModulesImage.ESPPath + " verified by dm-verity"), []byte("Welcome to ")} {
			if !bytes.Contains(w.buf.Bytes(), want) {
				t.Errorf("console lacks %q", want)
			}
		}
		t.Logf("debianhost reached multi-user.target (boot of %v)", time.Since(w.start).Round(time.Second))
	}
	t.Run("debianui", func(t *testing.T) { testDebianui(t, vm.Machine, d, vol, sb) })
}

// watch collects the console and calls found once want appears.
type watch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	want  []byte
	found func()
	hit   bool
	start time.Time
	file  *os.File // a live copy
}

func (w *watch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start.IsZero() {
		w.start = time.Now()
	}
	w.buf.Write(p)
	w.file.Write(p)
	tail := w.buf.Bytes()
	if n := len(tail) - len(p) - 512; n > 0 {
		tail = tail[n:] // the line may have begun in earlier writes
	}
	if !w.hit && bytes.Contains(ansi.ReplaceAll(tail, nil), w.want) {
		w.hit = true
		w.found()
	}
	return len(p), nil
}

func (w *watch) seen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hit
}
