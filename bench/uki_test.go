package bench

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"initos/authenticode"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
)

const (
	ukiBenchStub  = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
	ukiBenchKey   = "../authenticode/testdata/db.key"
	ukiBenchCert  = "../authenticode/testdata/db.crt"
	ukiBenchTotal = 60 << 20 // target UKI size: the initrd is padded up to it
)

// BenchmarkUKIBuildSign builds and signs a ~60 MB UKI (systemd-stub, the
// Debian kernel, an initrd padded to reach 60 MB) from files to a file,
// three ways in each iteration, in a rotating order:
//
//   - initos: `initos uki build --key --cert` (one process: reads the
//     inputs, builds, signs, writes the output atomically and fsyncs it);
//   - objcopy+sbsign: `objcopy --add-section ...` with the same section
//     VMAs, `sbsign`, then `sync FILE` so the output is as durable as ours;
//   - library: pecoff.BuildUKI + authenticode.Sign in this process,
//     written with os.WriteFile (no fsync: the cost of the code alone).
//
// x_peer_wall and x_peer_cpu are the peer pipeline's wall and CPU time
// (getrusage of the children) over the initos process's, per iteration:
// the median with min and max (-benchtime 5x or more on a shared machine).
func BenchmarkUKIBuildSign(b *testing.B) {
	objcopy, sbsign, syncTool := testenv.Tool(b, "objcopy"), testenv.Tool(b, "sbsign"), testenv.Tool(b, "sync")
	dir := b.TempDir()
	in := ukiBenchInputs(b, dir)
	key, cert := ukiBenchKeys(b)
	cli := buildInitos(b)
	ref := ukiBenchOurs(b, in, key, cert, filepath.Join(dir, "ref.efi")) // section VMAs for objcopy
	run := map[string]func() verityTime{
		"initos": func() verityTime {
			return verityProcess(b, cli, "uki", "build", "--stub", in.stub, "--linux", in.kernel, "--initrd", in.initrd,
				"--cmdline", "@"+in.cmdline, "--os-release", in.osrel, "--key", ukiBenchKey, "--cert", ukiBenchCert,
				"-o", verityFresh(b, dir, "cli.efi"))
		},
		"objcopy+sbsign": func() verityTime { return ukiBenchTheirs(b, objcopy, sbsign, syncTool, in, ref, dir) },
		"library": func() verityTime {
			cpu0, t0 := verityCPU(syscall.RUSAGE_SELF), time.Now()
			ukiBenchOurs(b, in, key, cert, filepath.Join(dir, "lib.efi"))
			return verityTime{time.Since(t0), verityCPU(syscall.RUSAGE_SELF) - cpu0}
		},
	}
	order := []string{"initos", "objcopy+sbsign", "library"}
	times := map[string][]verityTime{}
	for i := 0; b.Loop(); i++ {
		for j := range order {
			name := order[(i+j)%len(order)]
			times[name] = append(times[name], run[name]())
		}
	}
	ukiBenchReport(b, times)
}

func ukiBenchReport(b *testing.B, times map[string][]verityTime) {
	ratios := map[string][]float64{}
	for i, ours := range times["initos"] {
		peer, lib := times["objcopy+sbsign"][i], times["library"][i]
		ratios["x_peer_wall"] = append(ratios["x_peer_wall"], peer.wall.Seconds()/ours.wall.Seconds())
		ratios["x_peer_cpu"] = append(ratios["x_peer_cpu"], peer.cpu.Seconds()/ours.cpu.Seconds())
		ratios["x_peer_wall_lib"] = append(ratios["x_peer_wall_lib"], peer.wall.Seconds()/lib.wall.Seconds())
	}
	for name, rs := range ratios {
		slices.Sort(rs)
		b.ReportMetric(rs[len(rs)/2], name)
		b.ReportMetric(rs[0], name+"_min")
		b.ReportMetric(rs[len(rs)-1], name+"_max")
	}
	best := map[string]float64{}
	for name, ts := range times {
		ms := make([]float64, len(ts))
		for i, t := range ts {
			ms[i] = float64(t.wall.Milliseconds())
		}
		slices.Sort(ms)
		b.ReportMetric(ms[len(ms)/2], name+"_ms")
		best[name] = ms[0]
	}
	b.ReportMetric(best["objcopy+sbsign"]/best["initos"], "x_peer_wall_best") // the least disturbed runs
	b.Logf("%d iterations, machine load %s", len(times["initos"]), verityLoad())
}

type ukiBenchFiles struct{ stub, kernel, initrd, cmdline, osrel string }

func ukiBenchInputs(b *testing.B, dir string) ukiBenchFiles {
	b.Helper()
	kern, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "Debian kernel (linux-image-amd64): %v", err)
	}
	k, err := os.Stat(kern.Image)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(ukiBenchStub); err != nil {
		testenv.Missing(b, "systemd-stub (systemd-boot-efi): %v", err)
	}
	f := ukiBenchFiles{stub: ukiBenchStub, kernel: kern.Image, initrd: filepath.Join(dir, "initrd"),
		cmdline: filepath.Join(dir, "cmdline"), osrel: filepath.Join(dir, "os-release")}
	initrd := make([]byte, ukiBenchTotal-int(k.Size()))
	for i := range initrd {
		initrd[i] = byte(i * 7919 >> 8) // not all zeros, not compressible by accident
	}
	for path, data := range map[string][]byte{f.initrd: initrd, f.cmdline: []byte("console=ttyS0 quiet"), f.osrel: []byte("ID=initos\n")} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return f
}

func ukiBenchKeys(b *testing.B) (crypto.Signer, *x509.Certificate) {
	b.Helper()
	kb, err := os.ReadFile(ukiBenchKey)
	if err != nil {
		b.Fatal(err)
	}
	key, err := authenticode.ParsePrivateKey(kb)
	if err != nil {
		b.Fatal(err)
	}
	cb, _ := os.ReadFile(ukiBenchCert)
	certs, err := authenticode.ParseCertificates(cb)
	if err != nil {
		b.Fatal(err)
	}
	return key, certs[0]
}

func ukiBenchRead(b *testing.B, path string) []byte {
	b.Helper()
	d, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// ukiBenchOurs reads the inputs, builds, signs and writes the UKI.
func ukiBenchOurs(b *testing.B, in ukiBenchFiles, key crypto.Signer, cert *x509.Certificate, out string) *pecoff.Image {
	b.Helper()
	img, err := pecoff.BuildUKI(ukiBenchRead(b, in.stub), pecoff.UKI{
		OSRelease: ukiBenchRead(b, in.osrel), Cmdline: ukiBenchRead(b, in.cmdline),
		Initrd: ukiBenchRead(b, in.initrd), Linux: ukiBenchRead(b, in.kernel),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := authenticode.Sign(img, key, cert, authenticode.SignOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(out, img.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return img
}

// ukiBenchTheirs runs the objcopy recipe with the VMAs ukify's rule gives
// (taken from our image), signs the result with sbsign and fsyncs it.
func ukiBenchTheirs(b *testing.B, objcopy, sbsign, syncTool string, in ukiBenchFiles, img *pecoff.Image, dir string) verityTime {
	b.Helper()
	files := map[string]string{".osrel": in.osrel, ".cmdline": in.cmdline, ".initrd": in.initrd, ".linux": in.kernel}
	var args []string
	for _, s := range img.Sections() {
		if f, ok := files[s.Name]; ok {
			args = append(args, "--add-section", s.Name+"="+f, "--change-section-vma", fmt.Sprintf("%s=%#x", s.Name, s.VirtualAddress))
		}
	}
	unsigned, signed := verityFresh(b, dir, "objcopy.efi"), verityFresh(b, dir, "objcopy.signed.efi")
	var total verityTime
	for _, cmd := range [][]string{
		append(append([]string{objcopy}, args...), in.stub, unsigned),
		{sbsign, "--key", ukiBenchKey, "--cert", ukiBenchCert, "--output", signed, unsigned},
		{syncTool, signed},
	} {
		t := verityProcess(b, cmd[0], cmd[1:]...)
		total.wall += t.wall
		total.cpu += t.cpu
	}
	return total
}
