package build

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"initos/bootconfig"
	"initos/internal/atomicfile"
	"initos/squashfs"
)

// Installer asks Build for the USB installer's UKI too (InstallerUKIFile),
// from the same kernel, modules image and keys as the installed one: its
// initrd runs install mode (`initos usb build` puts it on the stick).
type Installer struct {
	// RecoveryRootHash is the dm-verity root hash (hex) of the recovery
	// image, the squashfs that `initos usb build --recovery-sqfs` writes to
	// the stick: initos-init opens it with this hash. Required.
	RecoveryRootHash string
	// Modules are the installer initrd's early modules; nil means
	// initrd.DefaultModules for install mode (USB mass storage included).
	Modules []string
}

const (
	// InstallerUKIFile is the installer UKI's name in the output directory.
	InstallerUKIFile = "installer.efi"
	// InstallerPayloadDir is where `initos usb build` copies the files the
	// install config names on the stick's ESP (install.USBPayloadDir): the
	// installer reads the modules image there, the one the install copies.
	InstallerPayloadDir = "initos/payload"
	// installModeArg and recoveryArg are what `initos usb build` checks on
	// the installer UKI's command line (install.InstallModeArg,
	// install.RecoveryArg).
	installModeArg = "initos.mode=install"
	recoveryArg    = "initos.recovery"
)

// InstallerInfo is the installer UKI in the manifest.
type InstallerInfo struct {
	File             string   `json:"file"`
	Cmdline          string   `json:"cmdline"`
	ModulesImagePath string   `json:"modules_image_path"` // on the stick's ESP
	RecoveryRootHash string   `json:"recovery_root_hash"`
	EarlyModules     []string `json:"early_modules"`
	InitrdSHA256     string   `json:"initrd_sha256"`
}

// check validates the installer options.
func (in *Installer) check() error {
	if b, err := hex.DecodeString(in.RecoveryRootHash); err != nil || len(b) < 16 {
		return fmt.Errorf("build: installer: recovery root hash %q: want the recovery image's verity root hash in hex", in.RecoveryRootHash)
	}
	return nil
}

// Cmdline is the installer UKI's command line for the installed one's.
func (in *Installer) Cmdline(cmdline string) string {
	return strings.TrimSpace(cmdline + " " + installModeArg + " " + recoveryArg + "=" + strings.ToLower(in.RecoveryRootHash))
}

// installer builds the installer UKI: the installed one's config in
// install mode, reading the modules image from the stick's payload.
func (b *builder) installer(sq *squashfs.Reader, rel string, linux []byte) error {
	in := b.opts.Installer
	cfg := b.config(rel)
	cfg.Mode = bootconfig.ModeInstall
	cfg.ModulesImage.File = InstallerPayloadDir + "/" + b.mod.FileName
	rd, rdImg, err := buildInitrd(sq, initrdInputs{init: b.opts.Init, goarch: b.src.arch, release: rel, modules: in.Modules, config: cfg, epoch: b.epoch()})
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	cmdline := in.Cmdline(b.opts.Cmdline)
	img, err := UKI(UKIInputs{Stub: b.in.stub, Linux: linux, Initrd: rd, Cmdline: cmdline, Release: rel,
		OSRelease: b.osRelease(), PCRKey: b.opts.PCRKey, SigningKey: b.opts.SigningKey, SigningCert: b.opts.SigningCert})
	if err != nil {
		return fmt.Errorf("installer: %w", err)
	}
	if b.instF, err = atomicfile.Create(filepath.Join(b.opts.OutDir, InstallerUKIFile), 0o644); err != nil {
		return err
	}
	if _, err := b.instF.Write(img.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", InstallerUKIFile, err)
	}
	b.man.Installer = &InstallerInfo{File: InstallerUKIFile, Cmdline: cmdline, ModulesImagePath: cfg.ModulesImage.File,
		RecoveryRootHash: strings.ToLower(in.RecoveryRootHash), EarlyModules: rdImg.Config.EarlyModules, InitrdSHA256: sum(rd)}
	b.man.Files = append(b.man.Files, fileInfo(InstallerUKIFile, img.Bytes()))
	return nil
}
