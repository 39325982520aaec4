package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"initos/bootconfig"
	"initos/image"
	"initos/internal/atomicfile"
	"initos/internal/progress"
	"initos/modimage"
	"initos/squashfs"
)

// source is the resolved host image.
type source struct {
	img      v1.Image
	digest   v1.Hash
	platform string
	arch     string
}

// inputs are the files the build reads besides the image.
type inputs struct {
	init, stub []byte
}

// Build builds the modules image, the UKI and the manifest of opts into
// opts.OutDir and returns the manifest. On error or cancellation nothing
// in OutDir is changed.
func Build(ctx context.Context, opts Options) (*Manifest, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	src, err := resolve(ctx, opts)
	if err != nil {
		return nil, err
	}
	in, err := readInputs(&opts, src.arch)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b := &builder{opts: opts, src: src, in: in}
	defer b.abort()
	if err := b.modules(ctx); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := b.boot(ctx); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := b.commit(); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	return b.man, nil
}

// resolve opens the host image and reads its digest and architecture.
func resolve(ctx context.Context, opts Options) (*source, error) {
	p, err := image.ParsePlatform(opts.Platform)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	img, _, err := image.Resolve(ctx, opts.Source, p)
	if err != nil {
		return nil, fmt.Errorf("build: host image: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("build: host image %s: %w", opts.Source, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build: host image %s: config: %w", opts.Source, err)
	}
	arch := cfg.Architecture
	switch arch {
	case "amd64", "arm64":
	case "":
		arch = p.Architecture
	default:
		return nil, fmt.Errorf("build: host image %s: architecture %q: want amd64 or arm64", opts.Source, arch)
	}
	plat := cfg.OS + "/" + arch
	if cfg.OS == "" {
		plat = "linux/" + arch
	}
	return &source{img: img, digest: d, platform: plat, arch: arch}, nil
}

// readInputs reads initos-init and the stub (Debian's for arch when not
// given).
func readInputs(opts *Options, arch string) (*inputs, error) {
	init, err := os.ReadFile(opts.Init)
	if err != nil {
		return nil, fmt.Errorf("build: initos-init: %w", err)
	}
	if opts.Stub == "" {
		opts.Stub = StubFor(arch)
	}
	stub, err := os.ReadFile(opts.Stub)
	if err != nil {
		return nil, fmt.Errorf("build: systemd-stub for %s (package systemd-boot-efi, or --stub): %w", arch, err)
	}
	return &inputs{init: init, stub: stub}, nil
}

// builder holds a build's state between its steps.
type builder struct {
	opts   Options
	src    *source
	in     *inputs
	r      *router
	layers []LayerInfo
	mod    *modimage.Result
	modF   *atomicfile.File
	ukiF   *atomicfile.File
	instF  *atomicfile.File // the installer UKI (Options.Installer)
	man    *Manifest
}

// abort removes the temporary files left (nothing after commit).
func (b *builder) abort() {
	for _, f := range []*atomicfile.File{b.modF, b.ukiF, b.instF} {
		if f != nil {
			f.Abort()
		}
	}
}

// modules streams the image's layers into the modules image.
func (b *builder) modules(ctx context.Context) error {
	f, err := atomicfile.Create(filepath.Join(b.opts.OutDir, "modules.sqfs"), 0o644)
	if err != nil {
		return err
	}
	b.modF = f
	var total int64
	if ls, err := b.src.img.Layers(); err == nil {
		for _, l := range ls {
			if n, err := l.Size(); err == nil {
				total += n
			}
		}
	}
	bar := progress.New(b.opts.Progress, b.opts.Progress != nil, total, "reading image", true)
	defer bar.Finish()
	level := b.opts.Level
	if level == 0 {
		level = 3
	}
	so := squashfs.Options{Compressor: squashfs.Zstd, Level: level, Epoch: b.opts.Epoch, Workers: b.opts.Workers}
	b.mod, err = modimage.Build(ctx, f.File, modimage.Options{Squashfs: so, AddRelease: func(w *squashfs.Writer) (string, error) {
		b.r = newRouter(w, b.opts.Kernel, b.opts.Epoch)
		if b.layers, err = readLayers(ctx, b.src.img, func(n int) { bar.Add(int64(n)) }, b.r.layer); err != nil {
			return "", err
		}
		rel, err := b.r.chooseRelease()
		if err != nil {
			return "", err
		}
		for _, other := range b.r.releases {
			if other != rel {
				if err := w.Remove(modimage.ModulesPath(other)); err != nil {
					return "", err
				}
			}
		}
		return rel, nil
	}})
	return err
}

// boot builds the initrd and the UKI, and the manifest.
func (b *builder) boot(ctx context.Context) error {
	rel := b.mod.Release
	kpath, linux, err := b.r.kernel(rel)
	if err != nil {
		return err
	}
	sq, err := squashfs.NewReader(b.modF.File, b.mod.DataSize)
	if err != nil {
		return fmt.Errorf("read back the modules image: %w", err)
	}
	nmod, nfw, err := count(sq, rel)
	if err != nil {
		return err
	}
	cfg := b.config(rel)
	if err := ctx.Err(); err != nil {
		return err
	}
	rd, rdImg, err := buildInitrd(sq, initrdInputs{init: b.opts.Init, goarch: b.src.arch, release: rel, modules: b.opts.Modules, config: cfg, epoch: b.epoch()})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	img, err := UKI(UKIInputs{Stub: b.in.stub, Linux: linux, Initrd: rd, Cmdline: b.opts.Cmdline, Release: rel,
		OSRelease: b.osRelease(), PCRKey: b.opts.PCRKey, SigningKey: b.opts.SigningKey, SigningCert: b.opts.SigningCert})
	if err != nil {
		return err
	}
	if b.ukiF, err = atomicfile.Create(filepath.Join(b.opts.OutDir, UKIFile), 0o644); err != nil {
		return err
	}
	if _, err := b.ukiF.Write(img.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", UKIFile, err)
	}
	b.man = b.manifest(kpath, linux, rd, rdImg.Config, nmod, nfw)
	b.man.Files = []FileInfo{fileInfo(UKIFile, img.Bytes())}
	sum, err := hashFile(b.modF.File)
	if err != nil {
		return err
	}
	fi, err := b.modF.Stat()
	if err != nil {
		return err
	}
	b.man.Files = append(b.man.Files, FileInfo{Name: b.mod.FileName, Size: fi.Size(), SHA256: sum})
	if b.opts.Installer == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.installer(sq, rel, linux)
}

// config is the initrd config: the base one with the modules image, the
// security version and the build id.
func (b *builder) config(rel string) *bootconfig.Config {
	cfg := bootconfig.New()
	if b.opts.Config != nil {
		c := *b.opts.Config
		cfg = &c
	}
	cfg.ModulesImage = bootconfig.ModulesImage{
		File: ESPDir + "/" + b.mod.FileName, RootHash: b.mod.RootHash, Salt: hex.EncodeToString(b.mod.Verity.Salt),
		DataSize: b.mod.DataSize, HashOffset: b.mod.HashOffset,
	}
	cfg.SecurityVersion = b.opts.SecurityVersion
	cfg.BuildID = b.opts.BuildID
	if cfg.BuildID == "" {
		cfg.BuildID = b.src.digest.Hex[:12] + "-" + rel
	}
	return cfg
}

func (b *builder) epoch() int64 {
	if b.opts.Epoch.IsZero() {
		return 0
	}
	return b.opts.Epoch.Unix()
}

// osRelease is the image's os-release (/etc first).
func (b *builder) osRelease() []byte {
	if o := b.r.osrel["etc/os-release"]; o != nil {
		return o
	}
	return b.r.osrel["usr/lib/os-release"]
}

// commit renames the outputs into place, the manifest last.
func (b *builder) commit() error {
	data, err := b.man.Marshal()
	if err != nil {
		return err
	}
	if err := b.modF.CommitAs(filepath.Join(b.opts.OutDir, b.mod.FileName)); err != nil {
		return err
	}
	if err := b.ukiF.Commit(); err != nil {
		return err
	}
	if b.instF != nil {
		if err := b.instF.Commit(); err != nil {
			return err
		}
	}
	return atomicfile.WriteFile(filepath.Join(b.opts.OutDir, ManifestFile), data, 0o644)
}

// count counts the module and firmware files of the modules image.
func count(sq *squashfs.Reader, rel string) (mods, fw int, err error) {
	err = sq.Walk(func(p string, in *squashfs.Inode) error {
		if !in.Mode.IsRegular() {
			return nil
		}
		switch {
		case strings.HasPrefix(p, modimage.ModulesPath(rel)+"/") && isModule(p):
			mods++
		case strings.HasPrefix(p, modimage.FirmwareDir+"/"):
			fw++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read back the modules image: %w", err)
	}
	return mods, fw, nil
}

// isModule reports whether a file name is a kernel module.
func isModule(name string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func fileInfo(name string, data []byte) FileInfo {
	s := sha256.Sum256(data)
	return FileInfo{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(s[:])}
}
