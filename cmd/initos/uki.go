package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"initos/authenticode"
	"initos/efivar"
	"initos/internal/atomicfile"
	"initos/pecoff"
)

func init() {
	register("uki", "build, sign, verify and inspect Unified Kernel Images", runUKI)
	describe("uki build", "--linux FILE -o OUT [--stub FILE] [--initrd FILE] [--cmdline TEXT|@FILE] [--key KEY --cert CERT] [FLAGS]",
		"Assembles a Unified Kernel Image the way ukify does: a copy of systemd-stub (--stub) with .osrel, .cmdline, .dtb, .uname, .splash, .pcrpkey, .initrd, a merged .sbat, .pcrsig and .linux appended in that order. With --pcr-private-key it also signs the expected PCR 11 values (.pcrsig, as systemd-measure). With --key and --cert the result is signed (Authenticode, SHA-256). The output is written atomically and depends only on the inputs (SOURCE_DATE_EPOCH sets the signing time).")
	describe("uki sign", "--key KEY --cert CERT [-o OUT] FILE",
		"Adds an Authenticode signature (SHA-256, RSA 2048/3072/4096, PKCS#1 or PKCS#8 PEM key) to FILE's certificate table, keeping existing signatures, and writes the result atomically to OUT (default: FILE in place). SOURCE_DATE_EPOCH sets the signing time; without it none is written and the output is reproducible.")
	describe("uki strip", "[-o OUT] FILE",
		"Removes the attribute certificate table (every signature) from FILE and writes the unsigned image atomically to OUT (default: FILE in place).")
}

func runUKI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "uki", map[string]subcommand{
		"build":   {"assemble a UKI from systemd-stub, kernel, initrd, cmdline", ukiBuild},
		"sign":    {"add an Authenticode signature", ukiSign},
		"verify":  {"check the Authenticode signatures against certificates", ukiVerify},
		"inspect": {"list sections, digests and signatures", ukiInspect},
		"strip":   {"remove all signatures", ukiStrip},
	}, args, stdout, stderr)
}

// ukiDefaultStub is Debian's systemd-boot-efi stub for this architecture.
var ukiDefaultStub = ukiStubFor(runtime.GOARCH)

// ukiStubFor returns the path of Debian's systemd-stub for a GOARCH: the
// arm64 stub for arm64, else the x86-64 one.
func ukiStubFor(goarch string) string {
	if goarch == "arm64" {
		return "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"
	}
	return "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
}

// ukiBuildHook, when set (by uki_pcr.go), adds flags to `uki build` before
// they are parsed and returns the function that builds the image.
var ukiBuildHook func(fs *flag.FlagSet, stdout io.Writer) func(stub []byte, u pecoff.UKI) (*pecoff.Image, error)

type ukiBuildFlags struct {
	stub, linux, initrd, cmdline, osRelease, uname, splash, dtb string
	pcrpkey, pcrsig, sbat, out, key, cert                       string
	modImage, modImagePath                                      string
}

func ukiBuild(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uki build", stdout, stderr)
	var f ukiBuildFlags
	fs.StringVar(&f.stub, "stub", ukiDefaultStub, "systemd-stub `FILE`")
	fs.StringVar(&f.linux, "linux", "", "kernel EFI image `FILE` (required)")
	fs.StringVar(&f.initrd, "initrd", "", "initrd `FILE`")
	fs.StringVar(&f.cmdline, "cmdline", "", "kernel command line `TEXT`, or @FILE")
	fs.StringVar(&f.osRelease, "os-release", "", "os-release `FILE`")
	fs.StringVar(&f.uname, "uname", "", "kernel release `VERSION`")
	fs.StringVar(&f.splash, "splash", "", "splash BMP `FILE`")
	fs.StringVar(&f.dtb, "dtb", "", "devicetree `FILE`")
	fs.StringVar(&f.pcrpkey, "pcrpkey", "", "PCR public key PEM `FILE`")
	fs.StringVar(&f.pcrsig, "pcrsig", "", "systemd-measure signature JSON `FILE`")
	fs.StringVar(&f.sbat, "sbat", "", "extra SBAT CSV `FILE` merged into .sbat")
	fs.StringVar(&f.key, "key", "", "sign the result with this PEM `KEY` (needs --cert)")
	fs.StringVar(&f.cert, "cert", "", "signing certificate PEM `FILE`")
	fs.StringVar(&f.modImage, "modules-image", "", "modules image `FILE` (squashfs + verity): write its root hash, salt and sizes into the initrd's signed config")
	fs.StringVar(&f.modImagePath, "modules-image-path", "", "path of the modules image on the ESP (default initos/modules-UNAME.sqfs)")
	fs.StringVar(&f.out, "o", "", "output `FILE` (required)")
	build := pecoff.BuildUKI
	if ukiBuildHook != nil {
		build = ukiBuildHook(fs, stdout)
	}
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if f.linux == "" || f.out == "" {
		return usageError(fs, "--linux and -o are required")
	}
	if (f.key == "") != (f.cert == "") {
		return usageError(fs, "--key and --cert go together")
	}
	u, err := f.payloads()
	if err == nil {
		err = f.bindModulesImage(&u, stdout)
	}
	if err != nil {
		return fmt.Errorf("uki build: %w", err)
	}
	stub, err := os.ReadFile(f.stub)
	if err != nil {
		return fmt.Errorf("uki build: %w", err)
	}
	img, err := build(stub, u)
	if err != nil {
		return fmt.Errorf("uki build: %w", err)
	}
	if f.key != "" || f.cert != "" {
		if err := ukiSignImage(img, f.key, f.cert); err != nil {
			return fmt.Errorf("uki build: %w", err)
		}
	}
	if err := ukiWriteFile(f.out, img.Bytes()); err != nil {
		return fmt.Errorf("uki build: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d bytes, %d sections\n", f.out, len(img.Bytes()), len(img.Sections()))
	return nil
}

func (f *ukiBuildFlags) payloads() (pecoff.UKI, error) {
	var u pecoff.UKI
	var err error
	read := func(dst *[]byte, path string) {
		if path != "" && err == nil {
			*dst, err = os.ReadFile(path)
		}
	}
	read(&u.Linux, f.linux)
	read(&u.Initrd, f.initrd)
	read(&u.OSRelease, f.osRelease)
	read(&u.Splash, f.splash)
	read(&u.DTB, f.dtb)
	read(&u.PCRPKey, f.pcrpkey)
	read(&u.PCRSig, f.pcrsig)
	read(&u.SBAT, f.sbat)
	if file, ok := strings.CutPrefix(f.cmdline, "@"); ok {
		read(&u.Cmdline, file)
	} else {
		u.Cmdline = []byte(f.cmdline)
	}
	u.Uname = []byte(f.uname)
	return u, err
}

func ukiSign(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uki sign", stdout, stderr)
	key := fs.String("key", "", "PEM private `KEY` (PKCS#1 or PKCS#8, RSA 2048/3072/4096)")
	cert := fs.String("cert", "", "PEM or DER `CERTIFICATE` of the key")
	out := fs.String("o", "", "output `FILE` (default: sign IN in place)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *key == "" || *cert == "" {
		return usageError(fs, "--key and --cert are required")
	}
	img, err := ukiRead(pos[0])
	if err != nil {
		return fmt.Errorf("uki sign: %w", err)
	}
	if err := ukiSignImage(img, *key, *cert); err != nil {
		return fmt.Errorf("uki sign: %w", err)
	}
	dst := *out
	if dst == "" {
		dst = pos[0]
	}
	if err := ukiWriteFile(dst, img.Bytes()); err != nil {
		return fmt.Errorf("uki sign: %w", err)
	}
	fmt.Fprintf(stdout, "%s: signed\n", dst)
	return nil
}

// ukiSignImage signs img with a PEM key and certificate, with the signing
// time taken from SOURCE_DATE_EPOCH when set (else none: reproducible).
func ukiSignImage(img *pecoff.Image, keyPath, certPath string) error {
	if keyPath == "" || certPath == "" {
		return fmt.Errorf("%w: signing needs both --key and --cert", errUsage)
	}
	key, cert, err := ukiLoadPair(keyPath, certPath)
	if err != nil {
		return err
	}
	var opts authenticode.SignOptions
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("parse SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		opts.SigningTime = time.Unix(sec, 0).UTC()
	}
	return authenticode.Sign(img, key, cert, opts)
}

func ukiLoadPair(keyPath, certPath string) (crypto.Signer, *x509.Certificate, error) {
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	key, err := authenticode.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	certs, err := ukiLoadCerts(certPath)
	if err != nil {
		return nil, nil, err
	}
	return key, certs[0], nil
}

func ukiLoadCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := authenticode.ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ukiLoadTrusted reads the certificates "uki verify" trusts: a PEM bundle
// or one DER certificate, else an EFI signature list (db.esl from "keys
// create"), else an efivarfs variable file (4 attribute bytes, then the
// lists: /sys/firmware/efi/efivars/db-d719b2cb-...).
func ukiLoadTrusted(path string) ([]*x509.Certificate, error) {
	certs, certErr := ukiLoadCerts(path)
	if certErr == nil {
		return certs, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, certErr
	}
	for _, data := range [][]byte{b, b[min(4, len(b)):]} {
		lists, err := efivar.ParseSignatureLists(data)
		if err != nil || len(lists) == 0 {
			continue
		}
		if certs, err = efivar.Certificates(lists); err != nil {
			return nil, fmt.Errorf("%s: signature list: %w", path, err)
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("%s: signature list holds no X.509 certificate", path)
		}
		return certs, nil
	}
	return nil, fmt.Errorf("%w (nor an EFI signature list)", certErr)
}

func ukiStrip(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("uki strip", stdout, stderr)
	out := fs.String("o", "", "output `FILE` (default: IN in place)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	img, err := ukiRead(pos[0])
	if err != nil {
		return fmt.Errorf("uki strip: %w", err)
	}
	if err := img.StripCertificates(); err != nil {
		return fmt.Errorf("uki strip: %w", err)
	}
	dst := *out
	if dst == "" {
		dst = pos[0]
	}
	return ukiWriteFile(dst, img.Bytes())
}

// ukiMaxFile bounds what ukiRead reads: a PE image is at most 4 GiB.
const ukiMaxFile = 1<<32 - 1

// ukiRead reads and parses a PE image; a file larger than a PE image can
// be is refused before it is read.
func ukiRead(path string) (*pecoff.Image, error) {
	if st, err := os.Stat(path); err == nil && st.Size() > ukiMaxFile {
		return nil, fmt.Errorf("%s: %d bytes, larger than a PE image can be (4 GiB)", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// ukiWriteFile writes data to path through a temporary file in the same
// directory and a rename, so a failure never leaves half an image.
func ukiWriteFile(path string, data []byte) error { return ukiWriteFileMode(path, data, 0o644) }

// ukiWriteFileMode is ukiWriteFile with the final permission bits.
func ukiWriteFileMode(path string, data []byte, mode os.FileMode) error {
	return atomicfile.WriteFile(path, data, mode)
}
