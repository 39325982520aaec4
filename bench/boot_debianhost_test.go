package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/build"
	"initos/images/imagestest"
	"initos/internal/bootdisk"
	rootreport "initos/internal/bootdisk/report"
	bt "initos/internal/buildtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// debianhostBench is the machine of BenchmarkBootDebianhost.
type debianhostBench struct {
	m      *vmtest.Machine
	disk   *bootdisk.Disk
	ukis   map[string][]byte // "initos", "initramfs-tools"
	logDir string
}

// debianhostBoot is one boot's times: guest (CLOCK_MONOTONIC, from the
// kernel's start) to the root's systemd and to multi-user.target, and
// host wall time from qemu's start (firmware included) to the marker.
type debianhostBoot struct{ init, multiUser, wall time.Duration }

// BenchmarkBootDebianhost boots the debianhost root (the image of
// images/debianhost pulled into btrfs on LUKS2, one virtio disk, OVMF
// with Secure Boot, swtpm, 1.5 GiB, TCG) to multi-user.target twice per
// iteration, in alternating order, both through the firmware as signed
// UKIs (EFI/BOOT/BOOTX64.EFI on ESP A, the same systemd-stub, snakeoil
// key, command line prefix and kernel: the image's):
//
//   - initos: `initos build`'s UKI (initos-init, TPM unseal of the
//     volume key, binding check, modules image through dm-verity);
//   - initramfs-tools: the image's kernel with the initrd Debian's own
//     mkinitramfs makes in a chroot of the same root after apt-get
//     install initramfs-tools cryptsetup-initramfs (MODULES=most, udev,
//     busybox, cryptroot unlocking from a crypttab entry with a key file
//     carried in the initrd: KEYFILE_PATTERN; the keyslot has the TPM
//     keyslot's PBKDF2), root=/dev/mapper/cryptroot.
//
// The root holds a unit ordered after multi-user.target that prints
// systemd's UserspaceTimestampMonotonic (the root's init started) and
// multi-user.target's ActiveEnterTimestampMonotonic on the console.
// Metrics: mean seconds to the root's init and to multi-user.target for
// each, x_init and x_multi-user (initramfs-tools / initos, per iteration:
// median, min, max) and the same for the host's wall time from qemu's
// start (firmware, UKI load and signature check included). One vCPU, both
// alike: no separate CPU ratio. TCG on a shared host stretches both.
func BenchmarkBootDebianhost(b *testing.B) {
	testenv.RequireRoot(b)
	for _, tool := range []string{"qemu-system-x86_64", "swtpm", "mkfs.vfat", "mcopy", "mkfs.btrfs", "ssh-keygen", "chroot", "mount"} {
		testenv.Tool(b, tool)
	}
	bb := newDebianhostBench(b)
	times := map[string][]debianhostBoot{}
	sides := []string{"initos", "initramfs-tools"}
	for i := 0; b.Loop(); i++ {
		for j := range sides {
			side := sides[(i+j)%2]
			t := bb.boot(b, side, i)
			times[side] = append(times[side], t)
			b.Logf("iteration %d %s: init %.2fs, multi-user %.2fs (guest), %.1fs from qemu's start; load %s",
				i, side, t.init.Seconds(), t.multiUser.Seconds(), t.wall.Seconds(), verityLoad())
		}
	}
	debianhostReport(b, times)
}

func newDebianhostBench(b *testing.B) *debianhostBench {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "%v", err)
	}
	src := imagestest.Build(b, "debianhost")
	sb := bootdisk.Snakeoil(b)
	dir := b.TempDir()
	bb := &debianhostBench{ukis: map[string][]byte{}, logDir: dir}
	m, out := debianhostBuild(b, src, dir, sb)
	bb.ukis["initos"] = out[build.UKIFile]
	keyfile := make([]byte, 64)
	rand.Read(keyfile)
	vol := bootdisk.NewVolume(0, 3, "6a1f3c2e-8b4d-4e5f-9a7b-1c2d3e4f5a6b", "debianhost")
	root := filepath.Join(dir, "root.btrfs")
	var peer *debianPeer
	edit := func(top string) error {
		var err error
		peer, err = debianPrepareRoot(top, dir, vol.UUID, keyfile)
		return err
	}
	if err := bootdisk.BuildRoot(context.Background(), []string{root}, 1600, bootdisk.RootSpec{Image: src, Edit: edit}); err != nil {
		b.Fatal(err)
	}
	cmdline := bootCmdline + " root=/dev/mapper/cryptroot rootfstype=btrfs rootflags=subvol=" + peer.rootRel + " rw"
	if bb.ukis["initramfs-tools"], err = bootdisk.UKI(peer.kernel, peer.initrd, cmdline, peer.release, sb); err != nil {
		b.Fatal(err)
	}
	b.Logf("UKIs: initos %d MB, initramfs-tools %d MB (initrd %d MB, kernel %s)", len(bb.ukis["initos"])>>20,
		len(bb.ukis["initramfs-tools"])>>20, len(peer.initrd)>>20, peer.release)
	disk, err := bootdisk.NewDisk(filepath.Join(dir, "disk.img"), []bootdisk.Part{
		{Name: "InitOS ESP A", Type: bootdisk.TypeESP, MiB: 256}, {Name: "InitOS ESP B", Type: bootdisk.TypeESP, MiB: 32},
		{Name: "InitOS LUKS", Type: bootdisk.TypeLUKS, MiB: 16 + 1600},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vol.Format([]*bootdisk.Disk{disk}); err != nil {
		b.Fatal(err)
	}
	if err := disk.AddPassphrase(3, vol.Key, keyfile); err != nil {
		b.Fatal(err)
	}
	if err := disk.FormatESP(1, "ESP-A", map[string][]byte{m.ModulesImage.ESPPath: out[m.ModulesImage.File]}); err != nil {
		b.Fatal(err)
	}
	bb.m, err = vmtest.NewMachine(filepath.Join(dir, "machine"), vmtest.MachineConfig{
		Firmware: vmtest.OVMFSecureBoot(), TPM: true, MemoryMB: 1536, Disks: []vmtest.Disk{{Path: disk.Path}}})
	if err != nil {
		b.Fatal(err)
	}
	os.Remove(disk.Path)
	bb.disk = &bootdisk.Disk{Path: bb.m.DiskPath(0), Parts: disk.Parts}
	ctx, cancel := context.WithTimeout(context.Background(), vmtest.ScaleTimeout(10*time.Minute))
	defer cancel()
	plan := rootreport.EnrollPlan{Volumes: []rootreport.EnrollVolume{{Device: "/dev/vda3", Pass: string(vol.Pass), Bind: true}}}
	if res, err := bootdisk.Enroll(ctx, bb.m, bb.disk, 1, k, plan, sb); err != nil {
		if res != nil {
			b.Logf("console:\n%s", res.Console)
		}
		b.Fatal(err)
	}
	if err := vol.SaveHeader([]*bootdisk.Disk{bb.disk}); err != nil {
		b.Fatal(err)
	}
	if err := bb.disk.Install(3, vol, root); err != nil {
		b.Fatal(err)
	}
	os.Remove(root)
	return bb
}

// debianhostBuild runs `initos build` (the library) on the image.
func debianhostBuild(b *testing.B, src, dir string, sb *bootdisk.SecureBootKey) (*build.Manifest, map[string][]byte) {
	bin, err := bootdisk.InitosInit()
	if err != nil {
		b.Fatal(err)
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	opts := build.Options{Source: src, OutDir: filepath.Join(dir, "out"), Init: init, Cmdline: bootCmdline,
		Modules: bootdisk.VMModules, Config: cfg, SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: bootdisk.PCRKey(), Epoch: bt.Time}
	m, err := build.Build(context.Background(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return m, bt.ReadOut(b, opts.OutDir)
}

// debianMarker is the root's marker line: what the marker unit prints.
var debianMarker = regexp.MustCompile(`initos-bench: userspace=(\d+) multi-user=(\d+)`)

// debianEnd ends the analysis the root prints after the marker.
var debianEnd = []byte("initos-bench: end")

// boot boots side's UKI until the marker and returns its times.
func (bb *debianhostBench) boot(b *testing.B, side string, i int) debianhostBoot {
	if err := bb.disk.PutFile(1, "EFI/BOOT/BOOTX64.EFI", bb.ukis[side]); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), vmtest.ScaleTimeout(10*time.Minute))
	defer cancel()
	w := &markerWatch{found: cancel}
	res, err := bb.m.Boot(ctx, vmtest.BootSpec{Console: w})
	console := w.bytes()
	os.WriteFile(filepath.Join(bb.logDir, fmt.Sprintf("console-%d-%s.log", i, side)), console, 0o644)
	sub := debianMarker.FindSubmatch(console)
	if sub == nil {
		b.Fatalf("%s: no marker (multi-user.target not reached): %v\nconsole:\n%s", side, err, console)
	}
	if i == 0 { // where the time went: the analysis after the marker
		_, after, _ := bytes.Cut(console, sub[0])
		after, _, _ = bytes.Cut(after, debianEnd)
		b.Logf("%s: systemd-analyze in the root after the boot:\n%s", side, ansi.ReplaceAll(after, nil))
	}
	us := func(s []byte) time.Duration {
		n, _ := strconv.ParseInt(string(s), 10, 64)
		return time.Duration(n) * time.Microsecond
	}
	return debianhostBoot{init: us(sub[1]), multiUser: us(sub[2]), wall: w.at.Sub(res.Start)}
}

// ansi matches terminal colour codes.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// markerWatch collects the console and notes when the marker line came;
// the root then powers off, or found is called 5 minutes (scaled) later.
type markerWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found func()
	at    time.Time
}

func (w *markerWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.at.IsZero() {
		tail := w.buf.Bytes()
		if n := len(tail) - len(p) - 256; n > 0 {
			tail = tail[n:]
		}
		if m := debianMarker.FindIndex(tail); m != nil && bytes.IndexByte(tail[m[1]:], '\n') >= 0 {
			w.at = time.Now()
			time.AfterFunc(vmtest.ScaleTimeout(5*time.Minute), w.found)
		}
	}
	return len(p), nil
}

func (w *markerWatch) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.buf.Bytes())
}

// debianhostReport reports, for the root's init, multi-user.target and
// the host's wall time, the mean seconds of each side and the median,
// min and max of the per-iteration ratios (initramfs-tools / initos).
func debianhostReport(b *testing.B, times map[string][]debianhostBoot) {
	for _, m := range []struct {
		name string
		f    func(debianhostBoot) time.Duration
	}{
		{"init", func(t debianhostBoot) time.Duration { return t.init }},
		{"multi-user", func(t debianhostBoot) time.Duration { return t.multiUser }},
		{"wall", func(t debianhostBoot) time.Duration { return t.wall }},
	} {
		var ours, theirs time.Duration
		var rs []float64
		for i, t := range times["initos"] {
			p := times["initramfs-tools"][i]
			ours, theirs = ours+m.f(t), theirs+m.f(p)
			rs = append(rs, m.f(p).Seconds()/m.f(t).Seconds())
		}
		n := time.Duration(len(rs))
		slices.Sort(rs)
		b.ReportMetric((ours / n).Seconds(), "initos-"+m.name+"-s")
		b.ReportMetric((theirs / n).Seconds(), "initramfs-tools-"+m.name+"-s")
		b.ReportMetric(rs[len(rs)/2], "x_"+m.name)
		b.ReportMetric(rs[0], "x_"+m.name+"_min")
		b.ReportMetric(rs[len(rs)-1], "x_"+m.name+"_max")
	}
	b.Logf("machine shared; load %s", verityLoad())
}
