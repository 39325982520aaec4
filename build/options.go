package build

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"time"

	"initos/bootconfig"
)

// Options describe a build. Source, OutDir and Init are required.
type Options struct {
	// Source is the host image: a registry reference, oci:DIR[:TAG] or
	// docker-archive:FILE (image.Resolve).
	Source string
	// Platform is "os/arch[/variant]" for a multi-platform source; ""
	// means the build machine's.
	Platform string
	// OutDir receives the outputs (created if missing).
	OutDir string
	// Init is the initos-init binary for the image's architecture.
	Init string
	// Stub is the systemd-stub file; "" means Debian's for the image's
	// architecture (StubFor).
	Stub string
	// Kernel is the kernel release to build for; "" means the newest
	// release with a kernel image in /boot, else the first module
	// directory of the image.
	Kernel string
	// Cmdline is the UKI's kernel command line.
	Cmdline string
	// Modules are the initrd's early modules; nil means
	// initrd.DefaultModules for the image's architecture and the config's
	// mode.
	Modules []string
	// Config is the initrd config to start from; nil means
	// bootconfig.New(). Its modules image, security version and build id
	// are set by Build.
	Config *bootconfig.Config
	// SecurityVersion is the anti-rollback version written to the config.
	SecurityVersion uint64
	// BuildID names the build; "" means the image digest's first 12 hex
	// digits and the release ("e525cae8c4d6-6.1.0-57-amd64").
	BuildID string
	// SigningKey and SigningCert sign the UKI for Secure Boot (the db key
	// of `initos keys create`); nil leaves it unsigned.
	SigningKey  crypto.Signer
	SigningCert *x509.Certificate
	// PCRKey signs the PCR 11 policy (phase enter-initrd); nil builds a
	// UKI without .pcrsig and .pcrpkey.
	PCRKey crypto.Signer
	// Level is the modules image's zstd level; 0 means 3.
	Level int
	// Workers is the number of compression goroutines; 0 means
	// GOMAXPROCS. The output does not depend on it.
	Workers int
	// Epoch is SOURCE_DATE_EPOCH: it clamps the modules image's times and
	// is the initrd's only time; zero means 0 for the initrd and the
	// newest file time for the squashfs.
	Epoch time.Time
	// Installer, when set, also builds the USB installer's UKI
	// (InstallerUKIFile) from the same kernel, modules image and keys.
	Installer *Installer
	// Progress, when not nil, receives a progress bar (only drawn when it
	// is a terminal).
	Progress io.Writer
}

// Default outputs' names.
const (
	UKIFile      = "initos.efi"
	ManifestFile = "manifest.json"
	// ESPDir is the modules image's directory on the ESP.
	ESPDir = "initos"
)

// StubFor returns Debian's systemd-stub (package systemd-boot-efi) for a
// GOARCH: linuxaa64.efi.stub for arm64, else linuxx64.efi.stub.
func StubFor(goarch string) string {
	if goarch == "arm64" {
		return "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"
	}
	return "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
}

func (o *Options) check() error {
	switch {
	case o.Source == "":
		return errors.New("build: no host image given")
	case o.OutDir == "":
		return errors.New("build: no output directory given")
	case o.Init == "":
		return errors.New("build: no initos-init binary given")
	case (o.SigningKey == nil) != (o.SigningCert == nil):
		return errors.New("build: a Secure Boot signing key needs its certificate, and the other way round")
	case o.Installer != nil:
		return o.Installer.check()
	}
	return nil
}
