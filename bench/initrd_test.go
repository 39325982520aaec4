package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/initrd"
	"initos/internal/bootdisk"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// initrdSizes are the compressed sizes of the initrds of one kernel.
type initrdSizes struct {
	initos, initosZstd int64 // ours: zstd-best (the default), zstd default level
	itMost, itDep      int64 // initramfs-tools, MODULES=most and MODULES=dep
	dracut             int64 // dracut --hostonly
}

var sizesOnce = sync.OnceValues(measureInitrdSizes)

// BenchmarkInitrdSize compares the production initrd (initos-init and the
// default early modules of boot mode, for the newest installed kernel)
// with Debian's initramfs-tools (MODULES=most, the default, and
// MODULES=dep) and dracut --hostonly for the same kernel, each with its
// default compression (zstd in bookworm). Goals: initos <= 4 MiB and
// <= 1/8 of initramfs-tools (most). The sizes are measured once per
// process; the metrics are bytes and ratios (peer / initos).
func BenchmarkInitrdSize(b *testing.B) {
	testenv.RequireRoot(b)
	for _, tool := range []string{"mkinitramfs", "dracut"} {
		testenv.Tool(b, tool)
	}
	s, err := sizesOnce()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(s.initos), "initos-bytes")
	b.ReportMetric(float64(s.initosZstd), "initos-zstd3-bytes")
	b.ReportMetric(float64(s.itMost), "initramfs-tools-most-bytes")
	b.ReportMetric(float64(s.itDep), "initramfs-tools-dep-bytes")
	b.ReportMetric(float64(s.dracut), "dracut-hostonly-bytes")
	b.ReportMetric(float64(s.itMost)/float64(s.initos), "x_most")
	b.ReportMetric(float64(s.itDep)/float64(s.initos), "x_dep")
	b.ReportMetric(float64(s.dracut)/float64(s.initos), "x_dracut")
}

func measureInitrdSizes() (initrdSizes, error) {
	var s initrdSizes
	k, err := vmtest.FindKernel()
	if err != nil {
		return s, err
	}
	dir, err := os.MkdirTemp("", "bench-initrd")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	if s.initos, s.initosZstd, err = initosInitrdSize(k, dir); err != nil {
		return s, err
	}
	if s.itMost, err = mkinitramfsSize(k, dir, "most"); err != nil {
		return s, err
	}
	if s.itDep, err = mkinitramfsSize(k, dir, "dep"); err != nil {
		return s, err
	}
	out := filepath.Join(dir, "dracut.img")
	if b, err := exec.Command("dracut", "--quiet", "--force", "--hostonly", "--no-hostonly-cmdline", "--zstd", "--kver", k.Version, out).CombinedOutput(); err != nil {
		return s, &exec.ExitError{Stderr: b}
	}
	s.dracut, err = fileSize(out)
	return s, err
}

func initosInitrdSize(k vmtest.Kernel, dir string) (best, plain int64, err error) {
	bin, err := bootdisk.InitosInit()
	if err != nil {
		return 0, 0, err
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		return 0, 0, err
	}
	rd, err := initrd.Build(initrd.Options{Init: init, KernelDir: k.ModulesDir, GOARCH: "amd64", Config: bootconfig.New()})
	if err != nil {
		return 0, 0, err
	}
	var b1, b2 bytes.Buffer
	if err := rd.Archive.WriteTo(&b1, initramfs.ZstdBest); err != nil {
		return 0, 0, err
	}
	if err := rd.Archive.WriteTo(&b2, initramfs.Zstd); err != nil {
		return 0, 0, err
	}
	return int64(b1.Len()), int64(b2.Len()), nil
}

// mkinitramfsSize runs mkinitramfs with a copy of /etc/initramfs-tools
// whose MODULES is set to modules (nothing of the host changes).
func mkinitramfsSize(k vmtest.Kernel, dir, modules string) (int64, error) {
	conf := filepath.Join(dir, "initramfs-tools-"+modules)
	if out, err := exec.Command("cp", "-a", "/etc/initramfs-tools", conf).CombinedOutput(); err != nil {
		return 0, &exec.ExitError{Stderr: out}
	}
	p := filepath.Join(conf, "initramfs.conf")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "MODULES=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "MODULES="+modules)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return 0, err
	}
	out := filepath.Join(dir, "initrd-"+modules+".img")
	if b, err := exec.Command("mkinitramfs", "-d", conf, "-o", out, k.Version).CombinedOutput(); err != nil {
		return 0, &exec.ExitError{Stderr: b}
	}
	return fileSize(out)
}

func fileSize(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
