package bench

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// with initos (pecoff.BuildUKI + authenticode.Sign) and with the
// objcopy (same section VMAs) + sbsign pipeline, in the same iteration.
// It reports both times and x_objcopy_sbsign = their time / ours.
func BenchmarkUKIBuildSign(b *testing.B) {
	objcopy, sbsign := testenv.Tool(b, "objcopy"), testenv.Tool(b, "sbsign")
	dir := b.TempDir()
	in := ukiBenchInputs(b, dir)
	key, cert := ukiBenchKeys(b)
	b.SetBytes(ukiBenchTotal)
	b.ReportAllocs()
	var ours, theirs time.Duration
	for b.Loop() {
		t0 := time.Now()
		img := ukiBenchOurs(b, in, key, cert, filepath.Join(dir, "ours.efi"))
		t1 := time.Now()
		ukiBenchTheirs(b, objcopy, sbsign, in, img, dir)
		ours, theirs = ours+t1.Sub(t0), theirs+time.Since(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(ours.Milliseconds())/n, "initos-ms")
	b.ReportMetric(float64(theirs.Milliseconds())/n, "objcopy+sbsign-ms")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "x_objcopy_sbsign")
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
// (taken from our image) and signs the result with sbsign.
func ukiBenchTheirs(b *testing.B, objcopy, sbsign string, in ukiBenchFiles, img *pecoff.Image, dir string) {
	b.Helper()
	files := map[string]string{".osrel": in.osrel, ".cmdline": in.cmdline, ".initrd": in.initrd, ".linux": in.kernel}
	var args []string
	for _, s := range img.Sections() {
		if f, ok := files[s.Name]; ok {
			args = append(args, "--add-section", s.Name+"="+f, "--change-section-vma", fmt.Sprintf("%s=%#x", s.Name, s.VirtualAddress))
		}
	}
	unsigned, signed := filepath.Join(dir, "objcopy.efi"), filepath.Join(dir, "objcopy.signed.efi")
	for _, cmd := range [][]string{
		append(append([]string{objcopy}, args...), in.stub, unsigned),
		{sbsign, "--key", ukiBenchKey, "--cert", ukiBenchCert, "--output", signed, unsigned},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			b.Fatalf("%q: %v\n%s", cmd, err, out)
		}
	}
}
