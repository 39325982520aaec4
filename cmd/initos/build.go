package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/bootconfig"
	"initos/build"
	"initos/install"
	"initos/internal/progress"
)

func init() {
	register("build", "build the signed boot artifacts (modules image, UKI, manifest) from a host image", runBuild)
	describe("build", "--from-image REF|oci:DIR[:TAG]|docker-archive:FILE --keys DIR -o OUT [--pcr-key PEM|none] [--cmdline TEXT|@FILE] [--installer --recovery-sqfs FILE] [FLAGS]",
		"Reads the host image's layers once (each checked against its digest) and writes into OUT: modules-<release>.sqfs "+
			"(the kernel's modules and the firmware in a squashfs, zstd, its dm-verity tree appended), initos.efi (a UKI on "+
			"systemd-stub with the image's kernel, the production initrd whose config names the modules image's root hash, "+
			"the image's os-release, a PCR 11 policy for phase enter-initrd signed by --pcr-key, and an Authenticode signature "+
			"by DIR/db.key) and manifest.json. Reproducible: SOURCE_DATE_EPOCH sets the only time; the same inputs give the "+
			"same bytes. Outputs appear only once all are complete, the manifest last; an error or a signal leaves OUT as it was. "+
			"--installer also writes installer.efi, the USB installer's UKI for `initos usb build`: the same kernel, modules image "+
			"and keys, an install-mode initrd (USB mass storage among its early modules) that reads the modules image from the "+
			"stick's initos/payload, and initos.mode=install initos.recovery=ROOTHASH appended to the command line, ROOTHASH "+
			"computed from --recovery-sqfs (a squashfs with its verity tree appended, as `initos sqfs build --verity` writes).")
}

// buildFlags are the flags of `initos build`.
type buildFlags struct {
	from, keys, pcrKey, cmdline, kernel, init, stub, config, buildID, platform, out string
	secVersion                                                                      uint64
	level                                                                           int
	modules                                                                         initrdListFlag
	recovery                                                                        string
	asJSON, progress, installer                                                     bool
}

func (f *buildFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from-image", "", "host image: `REF`, oci:DIR[:TAG] or docker-archive:FILE (required)")
	fs.StringVar(&f.keys, "keys", "", "key `DIR` made by initos keys create: db.key and db.crt sign the UKI (required)")
	fs.StringVar(&f.pcrKey, "pcr-key", "", "RSA private key `PEM` that signs the PCR 11 policy (default DIR/pcr.key; none: no policy)")
	fs.StringVar(&f.cmdline, "cmdline", "", "kernel command line `TEXT`, or @FILE")
	fs.StringVar(&f.kernel, "kernel", "", "kernel `RELEASE` (default: the newest with a kernel image in /boot)")
	fs.StringVar(&f.init, "init", "", "initos-init `BIN` for the image's architecture (default: next to this program)")
	fs.StringVar(&f.stub, "stub", "", "systemd-stub `FILE` (default: Debian's for the image's architecture)")
	fs.StringVar(&f.config, "initrd-config", "", "initrd config `FILE` to start from (bootconfig JSON)")
	fs.Uint64Var(&f.secVersion, "security-version", 0, "anti-rollback security version `N`")
	fs.StringVar(&f.buildID, "build-id", "", "build `ID` (default: the image digest's first 12 hex digits and the release)")
	fs.Var(&f.modules, "module", "early module `NAME` of the initrd, instead of the default set (repeatable)")
	fs.IntVar(&f.level, "level", 3, "zstd level `N` of the modules image (1..22)")
	fs.StringVar(&f.platform, "platform", "", "`OS/ARCH` of a multi-platform image (default: this machine's)")
	fs.BoolVar(&f.installer, "installer", false, "also build installer.efi, the USB installer's UKI (needs --recovery-sqfs)")
	fs.StringVar(&f.recovery, "recovery-sqfs", "", "the installer's recovery root `FILE` (squashfs + verity tree): its root hash goes on installer.efi's command line")
	fs.StringVar(&f.out, "o", "", "output `DIR` (required)")
	fs.BoolVar(&f.asJSON, "json", false, "print the manifest as JSON")
	fs.BoolVar(&f.progress, "progress", true, "draw a progress bar on a terminal")
}

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", stdout, stderr)
	var f buildFlags
	f.define(fs)
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if f.from == "" || f.keys == "" || f.out == "" {
		return usageError(fs, "--from-image, --keys and -o are required")
	}
	if f.level < 1 || f.level > 22 {
		return usageError(fs, "--level %d: want 1..22", f.level)
	}
	if f.installer != (f.recovery != "") {
		return usageError(fs, "--installer and --recovery-sqfs go together")
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	if f.progress && progress.IsTerminal(stderr) {
		opts.Progress = stderr
	}
	m, err := build.Build(ctx, opts)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(stdout, m)
	}
	printBuildManifest(stdout, f.out, m)
	return nil
}

// options turns the flags into build options.
func (f *buildFlags) options() (build.Options, error) {
	keys, err := build.LoadKeys(f.keys, f.pcrKey)
	if err != nil {
		return build.Options{}, fmt.Errorf("build: %w", err)
	}
	o := build.Options{Source: f.from, Platform: f.platform, OutDir: f.out, Stub: f.stub, Kernel: f.kernel,
		SecurityVersion: f.secVersion, BuildID: f.buildID, Level: f.level,
		SigningKey: keys.DBKey, SigningCert: keys.DBCert, PCRKey: keys.PCRKey}
	if len(f.modules) > 0 {
		o.Modules = f.modules
	}
	if o.Init, err = initosInitPath(f.init); err != nil {
		return o, fmt.Errorf("build: %w", err)
	}
	o.Cmdline = f.cmdline
	if file, ok := strings.CutPrefix(f.cmdline, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return o, fmt.Errorf("build: --cmdline: %w", err)
		}
		o.Cmdline = strings.TrimSpace(string(b))
	}
	if f.installer {
		root, err := install.RecoveryRootHash(f.recovery)
		if err != nil {
			return o, fmt.Errorf("build: --recovery-sqfs: %w", err)
		}
		o.Installer = &build.Installer{RecoveryRootHash: root}
	}
	if f.config != "" {
		if o.Config, err = bootconfig.ReadFile(f.config); err != nil {
			return o, fmt.Errorf("build: --initrd-config: %w", err)
		}
	}
	if o.Epoch, err = epochFlag(""); err != nil {
		return o, fmt.Errorf("build: %w", err)
	}
	return o, nil
}

func printBuildManifest(w io.Writer, out string, m *build.Manifest) {
	fmt.Fprintf(w, "Output:          \t%s\n", out)
	fmt.Fprintf(w, "Source:          \t%s (%s, %s)\n", m.Source.Image, m.Source.Digest, m.Source.Platform)
	fmt.Fprintf(w, "Kernel:          \t%s (%s)\n", m.Kernel.Release, m.Kernel.Path)
	if len(m.SkippedKernels) > 0 {
		fmt.Fprintf(w, "Skipped kernels: \t%s\n", strings.Join(m.SkippedKernels, " "))
	}
	fmt.Fprintf(w, "Modules image:   \t%s: %d modules, %d firmware files\n", m.ModulesImage.File, m.ModulesImage.Modules, m.ModulesImage.Firmware)
	fmt.Fprintf(w, "Root hash:       \t%s\n", m.ModulesImage.RootHash)
	fmt.Fprintf(w, "Early modules:   \t%s\n", strings.Join(m.Initrd.EarlyModules, " "))
	fmt.Fprintf(w, "UKI:             \t%s (signed: %v, PCR policy: %v)\n", m.UKI.File, m.UKI.Signed, m.UKI.PCRPolicy)
	fmt.Fprintf(w, "Build id:        \t%s, security version %d\n", m.Initrd.BuildID, m.Initrd.SecurityVersion)
	if in := m.Installer; in != nil {
		fmt.Fprintf(w, "Installer UKI:   \t%s (recovery root hash %s, modules image from %s, early modules %s)\n",
			in.File, in.RecoveryRootHash, in.ModulesImagePath, strings.Join(in.EarlyModules, " "))
	}
}
