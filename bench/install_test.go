package bench

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/authenticode"
	"initos/internal/installtest"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
)

// BenchmarkInstall runs, in one VM (Debian's kernel, device-mapper, a
// swtpm TPM), the InitOS installer and the same layout made by hand with
// the C tools, alternately on two blank 3 GiB disks, two rounds each:
//
//	gpt    step gpt                    | sgdisk (3 named partitions) + partx
//	fat    step esp: 2 ESPs written,   | mkfs.fat x2 + mmd/mcopy, then per file mtype
//	       read back and verified      |   + sha256sum, sbverify (UKI), veritysetup verify (modules)
//	luks   step luks without the TPM   | cryptsetup luksFormat + systemd-cryptenroll --recovery-key
//	tpm    enroll.Enroll x1            | systemd-cryptenroll --tpm2-device --tpm2-pcrs=7
//	mkfs   step btrfs                  | cryptsetup open + mkfs.btrfs + mount
//	image  step image: OCI pull with   | sha256sum of the blob, gzip -dc | sha256sum (diffID),
//	       digest and diffID checked   |   btrfs subvolume create + tar -xzf + sync
//	rest   preflight (UKI signature,   | sbverify + veritysetup verify of the inputs first;
//	       verity), config, finish     |   initos.conf + umount + cryptsetup close last
//
// with a realistic UKI (systemd-stub, Debian's kernel, a 16 MiB initrd),
// a modules image (a squashfs of part of Debian's modules, verity
// appended) and a root image of ~60 MB from /usr/share; inputs come from
// an uncompressed squashfs disk. It reports each step's wall time in ms for
// both (minimum over rounds), x_c = C total / ours and x_c_cpu = C CPU
// time / ours (getrusage: children for the C tools; self + children,
// mkfs.btrfs included, for ours). Run with -benchtime 1x.
func BenchmarkInstall(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	payload := installBenchPayload(b, dir)
	disk := func(name string) string {
		p := filepath.Join(dir, name+".img")
		os.WriteFile(p, nil, 0o644)
		os.Truncate(p, 3<<30)
		return p
	}
	vm := vmtest.New(b, vmtest.Config{
		Modules:  []string{"dm-crypt", "xts", "ecb", "crc32c_generic", "btrfs", "squashfs"},
		Disks:    []vmtest.Disk{{Path: disk("a"), Serial: "bench-a"}, {Path: disk("b"), Serial: "bench-b"}, {Path: payload, ReadOnly: true}},
		Files:    installBenchTools(b),
		TPM:      true,
		MemoryMB: 2048,
		Timeout:  30 * time.Minute,
	})
	res := map[string]float64{}
	for b.Loop() {
		out := vm.Output(b, "^TestGuestInstallBench$")
		for _, m := range installBenchLine.FindAllStringSubmatch(out, -1) {
			v, _ := strconv.ParseFloat(m[2], 64)
			if old, ok := res[m[1]]; !ok || v < old {
				res[m[1]] = v
			}
		}
	}
	if len(res) == 0 {
		b.Fatal("the guest reported no measurement")
	}
	keys := make([]string, 0, len(res))
	for k := range res {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.ReportMetric(res[k], k)
	}
	b.ReportMetric(res["c-total-ms"]/res["initos-total-ms"], "x_c")
	b.ReportMetric(res["c-cpu-ms"]/res["initos-cpu-ms"], "x_c_cpu")
}

// installBenchLine is a measurement the guest logs: "BENCH name value".
var installBenchLine = regexp.MustCompile(`BENCH (\S+) ([0-9.]+)`)

// installBenchPayload builds the inputs and packs them in an uncompressed
// squashfs: initos.efi, modules-<release>.sqfs, keys/, oci/ (the root
// image) and root.tar.gz (its layer, for tar).
func installBenchPayload(b *testing.B, dir string) string {
	b.Helper()
	mksquashfs := testenv.Tool(b, "mksquashfs")
	pl := filepath.Join(dir, "payload")
	fx := installtest.New(b, pl) // keys (db.crt) and names; the artifacts are replaced below
	kern, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "Debian kernel (linux-image-amd64): %v", err)
	}
	installBenchUKI(b, fx, kern.Image)
	os.Remove(fx.Modules)
	root := installtest.WriteModulesFrom(b, mksquashfs, fx.Modules, filepath.Join(kern.ModulesDir, "kernel", "fs"))
	off, err := installtest.HashOffset(fx.Modules)
	if err != nil {
		b.Fatal(err)
	}
	installtest.WriteFiles(b, pl, map[string][]byte{"modules.roothash": []byte(root), "modules.hashoffset": []byte(strconv.FormatInt(off, 10))})
	os.RemoveAll(filepath.Join(pl, "image"))
	installBenchImage(b, pl)
	out := filepath.Join(dir, "payload.sqfs")
	if o, err := exec.Command(mksquashfs, pl, out, "-noappend", "-quiet", "-noI", "-noD", "-noF", "-noX").CombinedOutput(); err != nil {
		b.Fatalf("mksquashfs: %v\n%s", err, o)
	}
	return out
}

// installBenchUKI replaces the fixture's UKI by one of realistic size.
func installBenchUKI(b *testing.B, fx *installtest.Fixture, kernel string) {
	b.Helper()
	stub, err := os.ReadFile(ukiBenchStub)
	if err != nil {
		testenv.Missing(b, "systemd-stub (systemd-boot-efi): %v", err)
	}
	linux, _ := os.ReadFile(kernel)
	initrd := make([]byte, 16<<20)
	for i := range initrd {
		initrd[i] = byte(i * 7919 >> 8)
	}
	img, err := pecoff.BuildUKI(stub, pecoff.UKI{Linux: linux, Initrd: initrd, Uname: []byte(installtest.Release), Cmdline: []byte("quiet"), OSRelease: []byte("ID=initos\n")})
	if err != nil {
		b.Fatal(err)
	}
	if err := authenticode.Sign(img, fx.Owner.DB.Key, fx.Owner.DB.Cert, authenticode.SignOptions{}); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(fx.UKI, img.Bytes(), 0o644)
}

// installBenchImage writes root.tar.gz (~60 MB of /usr/share) and an OCI
// layout whose one layer is that very blob.
func installBenchImage(b *testing.B, dir string) {
	b.Helper()
	gz := filepath.Join(dir, "root.tar.gz")
	f, err := os.Create(gz)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	var total int64
	filepath.WalkDir("/usr/share", func(p string, d fs.DirEntry, err error) error {
		if err != nil || total > 60<<20 {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
			return nil
		}
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = p[1:]
		if fi.IsDir() {
			h.Name += "/"
		}
		if tw.WriteHeader(h) != nil {
			return nil
		}
		if fi.Mode().IsRegular() {
			if src, err := os.Open(p); err == nil {
				total += fi.Size()
				io.Copy(tw, src)
				src.Close()
			}
		}
		return nil
	})
	tw.Close()
	zw.Close()
	f.Close()
	layer, err := tarball.LayerFromFile(gz)
	if err != nil {
		b.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, layer)
	lp, err := layout.Write(filepath.Join(dir, "oci"), empty.Index)
	if err == nil {
		err = lp.AppendImage(img)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// installBenchTools are the C tools of the hand-made pipeline, the
// installer's mkfs.btrfs, and their libraries (systemd-cryptenroll loads
// the tpm2-tss libraries with dlopen).
func installBenchTools(b *testing.B) map[string]string {
	b.Helper()
	files := map[string]string{}
	tss := "/usr/lib/x86_64-linux-gnu/libtss2-"
	for _, tool := range []struct {
		name  string
		extra []string
	}{
		{"sgdisk", nil}, {"partx", nil}, {"mkfs.fat", nil}, {"mtools", nil}, {"cryptsetup", nil},
		{"systemd-cryptenroll", []string{tss + "esys.so.0", tss + "rc.so.0", tss + "mu.so.0", tss + "tctildr.so.0", tss + "tcti-device.so.0"}},
		{"mkfs.btrfs", nil}, {"btrfs", nil}, {"tar", nil}, {"gzip", nil},
		{"sbverify", nil}, {"veritysetup", nil}, {"sha256sum", nil},
	} {
		for g, h := range installtest.WithLibraries(b, testenv.Tool(b, tool.name), tool.extra...) {
			files[g] = h
		}
	}
	mtools := testenv.Tool(b, "mtools")
	for _, applet := range []string{"mcopy", "mmd", "mtype"} {
		files["/usr/bin/"+applet] = mtools
	}
	// mtools converts names through iconv (code page 850).
	gconv := "/usr/lib/x86_64-linux-gnu/gconv/"
	for _, f := range []string{"gconv-modules", "gconv-modules.cache", "IBM850.so", "IBM437.so", "gconv-modules.d/gconv-modules-extra.conf"} {
		files[gconv+f] = gconv + f
	}
	return files
}
