package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"initos/install"
	"initos/internal/progress"
)

func init() {
	register("install", "install InitOS on blank disks: ESPs, LUKS2 + TPM, btrfs, root image, boot entries", runInstall)
	describe("install", "[FLAGS] [DISK...]",
		"Installs InitOS on the disks (a /dev path, a /dev/disk/by-id name or its id such as virtio-SERIAL, or auto): "+
			"per disk GPT partitions InitOS ESP A and B (FAT32 with the signed UKI and the modules image, verified by reading back) "+
			"and InitOS LUKS (LUKS2 with a TPM2 token and a recovery key), btrfs over the volumes (raid1 with several disks), "+
			"the root image in images/roots/NAME, initos.conf naming it for slots A and B, and firmware boot entries InitOS A and B. "+
			"In setup mode the owner's Secure Boot keys are enrolled first and the install continues after a reboot (exit 4). "+
			"Nothing is written before the plan is printed and consented to (--yes); a disk in use, the disk we booted from, "+
			"a disk with data (without --wipe) and a disk too small are refused (exit 3). Every step can be rerun: after a "+
			"power loss the same command completes the install. Settings come from --config install.json; flags override it. "+
			"Exit status: 0 installed, 1 a step failed (named), 2 usage, 3 refused before writing, 4 reboot to continue, 130/143 interrupted by SIGINT/SIGTERM.")
}

// installFlags are the flags of `initos install`, applied over the config.
type installFlags struct {
	config   string
	cfg      install.Config
	json     bool
	progress bool
}

func (f *installFlags) register(fs *flag.FlagSet) {
	c := &f.cfg
	fs.StringVar(&f.config, "config", "", "install config `FILE` (JSON; paths relative to it)")
	fs.BoolVar(&c.Wipe, "wipe", false, "erase disks that hold partitions, filesystems or other data")
	fs.BoolVar(&c.Yes, "yes", false, "consent to write the disks of the printed plan")
	fs.BoolVar(&c.Force, "force", false, "install with Secure Boot off (or without UEFI variables)")
	fs.Var(&c.ESPSize, "esp-size", "`SIZE` of each ESP, e.g. 500MiB (default 500MiB)")
	fs.BoolVar(&c.SingleESP, "single-esp", false, "one ESP per disk (slot A only)")
	fs.Var(&c.MinRootSize, "min-root-size", "smallest LUKS partition accepted, a `SIZE` (default 1GiB)")
	fs.StringVar(&c.UKI, "uki", "", "signed UKI `FILE`")
	fs.StringVar(&c.Modules, "modules", "", "modules image `FILE` (modules-<release>.sqfs with verity)")
	fs.StringVar(&c.Artifacts, "artifacts", "", "`DIR` holding the UKI (*.efi) and the modules image")
	fs.StringVar(&c.ModulesRootHash, "modules-root-hash", "", "expected verity root hash (`HEX`) of the modules image")
	fs.StringVar(&c.Image, "image", "", "root image: `REF`, oci:DIR or docker-archive:FILE")
	fs.StringVar(&c.Platform, "platform", "", "image platform `OS/ARCH` (default this machine's)")
	fs.StringVar(&c.RootName, "root-name", "", "root subvolume `NAME` under images/roots (default host)")
	fs.StringVar(&c.SecureBoot.Keys, "keys", "", "owner Secure Boot keys `DIR` (initos keys create): enrolled in setup mode")
	fs.StringVar(&c.SecureBoot.DBCert, "db-cert", "", "PEM `FILE` of certificates the UKI must verify against")
	fs.BoolVar(&c.TPM.Disable, "no-tpm", false, "enroll no TPM token (recovery key only)")
	fs.StringVar(&c.TPM.Device, "tpm2-device", "", "TPM `DEVICE` or swtpm:path=SOCK (default /dev/tpmrm0)")
	fs.StringVar(&c.TPM.PCRs, "tpm2-pcrs", "", "`PCRS` bound by value, systemd syntax (default 7+15:sha256=00…)")
	fs.StringVar(&c.TPM.PublicKey, "tpm2-public-key", "", "PEM `FILE` of the signed PCR policy key (default the UKI's .pcrpkey)")
	fs.StringVar(&c.TPM.PublicKeyPCRs, "tpm2-public-key-pcrs", "", "`PCRS` of the signed policy (default 11)")
	fs.StringVar(&c.RecoveryKey.File, "recovery-key-file", "", "also write the recovery key to `FILE` (0600)")
	fs.BoolVar(&c.RecoveryKey.Hide, "hide-recovery-key", false, "do not print the recovery key (needs --recovery-key-file)")
	fs.StringVar(&c.EFIVars, "efivars", "", "efivarfs mount, or an efivarfs-like `DIR`")
	fs.BoolVar(&c.NoBootEntries, "no-boot-entries", false, "leave Boot#### and BootOrder alone")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.BoolVar(&f.progress, "progress", true, "show a progress bar on a terminal")
}

// merged returns the config file's settings with the flags given on the
// command line (and the positional disks) over them.
func (f *installFlags) merged(fs *flag.FlagSet, disks []string) (*install.Config, error) {
	cfg := &install.Config{}
	if f.config != "" {
		var err error
		if cfg, err = install.LoadConfig(f.config); err != nil {
			return nil, err
		}
	}
	if len(disks) > 0 {
		cfg.Disks = disks
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	c := &f.cfg
	for name, apply := range map[string]func(){
		"wipe": func() { cfg.Wipe = c.Wipe }, "yes": func() { cfg.Yes = c.Yes }, "force": func() { cfg.Force = c.Force },
		"esp-size": func() { cfg.ESPSize = c.ESPSize }, "single-esp": func() { cfg.SingleESP = c.SingleESP },
		"min-root-size": func() { cfg.MinRootSize = c.MinRootSize }, "uki": func() { cfg.UKI = c.UKI },
		"modules": func() { cfg.Modules = c.Modules }, "artifacts": func() { cfg.Artifacts = c.Artifacts },
		"modules-root-hash": func() { cfg.ModulesRootHash = c.ModulesRootHash }, "image": func() { cfg.Image = c.Image },
		"platform": func() { cfg.Platform = c.Platform }, "root-name": func() { cfg.RootName = c.RootName },
		"keys": func() { cfg.SecureBoot.Keys = c.SecureBoot.Keys }, "db-cert": func() { cfg.SecureBoot.DBCert = c.SecureBoot.DBCert },
		"no-tpm": func() { cfg.TPM.Disable = c.TPM.Disable }, "tpm2-device": func() { cfg.TPM.Device = c.TPM.Device },
		"tpm2-pcrs": func() { cfg.TPM.PCRs = c.TPM.PCRs }, "tpm2-public-key": func() { cfg.TPM.PublicKey = c.TPM.PublicKey },
		"tpm2-public-key-pcrs": func() { cfg.TPM.PublicKeyPCRs = c.TPM.PublicKeyPCRs },
		"recovery-key-file":    func() { cfg.RecoveryKey.File = c.RecoveryKey.File }, "hide-recovery-key": func() { cfg.RecoveryKey.Hide = c.RecoveryKey.Hide },
		"efivars": func() { cfg.EFIVars = c.EFIVars }, "no-boot-entries": func() { cfg.NoBootEntries = c.NoBootEntries },
	} {
		if set[name] {
			apply()
		}
	}
	return cfg, nil
}

func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("install", stdout, stderr)
	var f installFlags
	f.register(fs)
	disks, err := parseFlags(fs, args, 0, -1)
	if err != nil {
		return err
	}
	cfg, err := f.merged(fs, disks)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("%w: install: %v", errUsage, err)}
	}
	out := stdout
	if f.json {
		out = stderr // the plan and the step lines; stdout carries the JSON
	}
	opts := install.Options{Out: out, Progress: progress.New(stderr, f.progress, int64(len(install.Steps)), "install", false)}
	sum, err := install.Run(ctx, cfg, opts)
	if err == nil || sum != nil && len(sum.Steps) > 0 {
		if werr := reportInstall(stdout, f.json, sum, err); werr != nil && err == nil {
			err = werr
		}
	}
	return installExit(ctx, err)
}

// reportInstall prints the summary: all of it when the install ended,
// and as JSON (also after a failure, with the steps done) with --json.
func reportInstall(w io.Writer, asJSON bool, sum *install.Summary, err error) error {
	if asJSON {
		return writeJSON(w, sum)
	}
	if err == nil {
		sum.Write(w)
	}
	return nil
}

// installExit maps install errors to exit codes.
func installExit(ctx context.Context, err error) error {
	var ref *install.RefusedError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return err // runMain: 128+signal
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	case errors.Is(err, install.ErrConfig):
		return &exitError{code: 2, err: err}
	case errors.As(err, &ref), errors.Is(err, install.ErrNoConsent):
		return &exitError{code: 3, err: err}
	case errors.Is(err, install.ErrRebootNeeded):
		return &exitError{code: 4, err: err}
	}
	return err
}
