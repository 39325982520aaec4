package install

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"initos/efivar"
	"initos/enroll"
	"initos/image"
)

// run is the state of one install.
type run struct {
	cfg   *Config
	opts  Options
	out   io.Writer
	efi   efivar.Store
	art   *Artifacts
	plan  *Plan
	sum   *Summary
	start time.Time

	mkfs     string
	policy   enroll.Policy
	enroll   EnrollFunc
	bound    bool // the volumes get an initos-binding token
	recovery string
	vols     []*volume
	top      string // where the btrfs is mounted, "" when not
	img      *image.Image
	root     string
}

func newRun(cfg *Config, opts Options) *run {
	opts.System = opts.System.withDefaults()
	r := &run{cfg: cfg, opts: opts, out: opts.Out, sum: &Summary{}}
	if r.out == nil {
		r.out = io.Discard
	}
	r.start = r.now()
	return r
}

// preflight checks everything that can fail before a disk is touched.
func (r *run) preflight(ctx context.Context) (string, error) {
	r.efi = r.opts.EFI
	if r.efi == nil {
		r.efi = openEFI(r.cfg.EFIVars)
	}
	uki, modules, err := findArtifacts(r.cfg)
	if err != nil {
		return "", err
	}
	trusted, err := trustedCerts(r.cfg, r.efi)
	if err != nil {
		return "", err
	}
	r.art = &Artifacts{}
	if err := loadUKI(uki, trusted, r.art); err != nil {
		return "", err
	}
	if err := loadModules(modules, r.cfg.ModulesRootHash, r.art); err != nil {
		return "", err
	}
	if err := checkImage(ctx, r.cfg.Image, r.cfg.Platform); err != nil {
		return "", err
	}
	if err := r.setupTPM(); err != nil {
		return "", err
	}
	if r.mkfs, err = findMkfs(r.opts.MkfsBtrfs); err != nil {
		return "", err
	}
	s := r.sum
	s.UKI, s.UKISigner, s.Modules, s.ModulesRootHash = r.art.UKIPath, r.art.Signer, r.art.ModulesName, r.art.RootHash
	return "done", nil
}

// openEFI opens the variable store: efivarfs, or any other directory laid
// out like it (tests, offline installs); nil when there is none.
func openEFI(path string) efivar.Store {
	if st, err := efivar.OpenEfivarfs(path); err == nil {
		return st
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() && path != DefaultEFIVars {
		return &efivar.Dir{Path: path}
	}
	return nil
}

// checkImage resolves the root image source (it must exist) without
// pulling it.
func checkImage(ctx context.Context, src, platform string) error {
	p, err := image.ParsePlatform(platform)
	if err != nil {
		return fmt.Errorf("root image: %w", err)
	}
	if _, _, err := image.Resolve(ctx, src, p); err != nil {
		return fmt.Errorf("root image %s: %w", src, err)
	}
	return nil
}

// setupTPM resolves the TPM policy and the enroll function, and checks
// the TPM is there.
func (r *run) setupTPM() error {
	if r.cfg.TPM.Disable {
		r.enroll = nil
		return nil
	}
	p, err := tpmPolicy(&r.cfg.TPM, r.art)
	if err != nil {
		return err
	}
	r.policy = p
	if r.enroll = r.opts.Enroll; r.enroll != nil {
		return nil
	}
	if err := checkTPM(r.cfg.TPM.Device); err != nil {
		return err
	}
	sig, err := pcrSignature(&r.cfg.TPM)
	if err != nil {
		return err
	}
	r.bound = sig != nil && p.PublicKey != nil
	r.enroll, err = tpmEnroller(r.cfg.TPM.Device, p, sig)
	return err
}

// disks picks the disks, applies the safety rules, prints the plan and
// requires consent. Nothing is written before it returns nil.
func (r *run) disks(context.Context) (string, error) {
	disks, err := r.opts.System.describeAll(r.efi, r.cfg.Disks)
	if err != nil {
		return "", err
	}
	auto := len(r.cfg.Disks) == 1 && r.cfg.Disks[0] == "auto"
	if r.plan, err = makePlan(disks, r.cfg, auto, randReader); err != nil {
		return "", err
	}
	r.plan.Write(r.out)
	r.sum.setDisks(r.plan)
	r.sum.Filesystem = "btrfs"
	if len(r.plan.Disks) > 1 {
		r.sum.Filesystem = "btrfs raid1"
	}
	if !r.cfg.Yes {
		return "", ErrNoConsent
	}
	return "done", nil
}

// secureBoot enrolls the owner's keys in setup mode, or checks that
// Secure Boot is on.
func (r *run) secureBoot(context.Context) (string, error) {
	if r.efi == nil {
		if !r.cfg.Force {
			return "", fmt.Errorf("no UEFI variables (efivarfs at %s): InitOS boots with UEFI Secure Boot; --force installs anyway", r.cfg.EFIVars)
		}
		r.sum.SecureBoot = "no UEFI variables (forced)"
		return "skipped: no UEFI variables", nil
	}
	setup, _ := efivar.GetUint8(r.efi, "SetupMode", efivar.GlobalVariable)
	if setup == 1 && r.cfg.SecureBoot.Keys != "" && !r.plan.Complete {
		if err := r.enrollKeys(); err != nil {
			return "", err
		}
		r.sum.SecureBoot = "owner keys enrolled (setup mode)"
		if !r.cfg.Force {
			return "keys enrolled", ErrRebootNeeded
		}
		return "keys enrolled, continuing with Secure Boot off (forced)", nil
	}
	err := enroll.CheckSecureBoot(r.efi)
	switch {
	case err == nil:
		r.sum.SecureBoot = "on"
		return "on", nil
	case r.cfg.Force:
		r.sum.SecureBoot = "off (forced)"
		return "off (forced)", nil
	case setup == 1:
		return "", fmt.Errorf("%w; give the owner's keys (secure_boot.keys) to enroll them, or --force", err)
	}
	return "", fmt.Errorf("%w; turn it on in the firmware setup, or --force (a TPM policy bound to PCR 7 would then not hold under Secure Boot)", err)
}

func (r *run) enrollKeys() error {
	var p [3][]byte
	for i, name := range []string{"db.auth", "KEK.auth", "PK.auth"} {
		b, err := os.ReadFile(filepath.Join(r.cfg.SecureBoot.Keys, name))
		if err != nil {
			return fmt.Errorf("secure boot keys: %w", err)
		}
		p[i] = b
	}
	if err := efivar.Enroll(r.efi, p[0], p[1], p[2]); err != nil {
		return fmt.Errorf("enroll the Secure Boot keys: %w", err)
	}
	r.logf("secureboot: enrolled db, KEK and PK from %s", r.cfg.SecureBoot.Keys)
	return nil
}

// cleanup unmounts and closes what an interrupted run left open and
// wipes the keys from memory.
func (r *run) cleanup() {
	if r.top != "" {
		unmount(r.top)
		r.top = ""
	}
	r.closeVolumes()
}
