package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"initos/bootconfig"
)

// manifest describes the build (Files are added by the caller).
func (b *builder) manifest(kpath string, linux, rd []byte, cfg *bootconfig.Config, nmod, nfw int) *Manifest {
	ks := sha256.Sum256(linux)
	m := &Manifest{
		Version: ManifestVersion,
		Arch:    b.src.arch,
		Kernel:  KernelInfo{Release: b.mod.Release, Path: kpath, SHA256: hex.EncodeToString(ks[:]), Size: int64(len(linux))},
		Source: SourceInfo{Image: b.opts.Source, Digest: b.src.digest.String(), Platform: b.src.platform,
			Layers: b.layers},
		ModulesImage: ModulesInfo{
			File: b.mod.FileName, ESPPath: cfg.ModulesImage.File, RootHash: b.mod.RootHash, Salt: cfg.ModulesImage.Salt,
			DataSize: b.mod.DataSize, HashOffset: b.mod.HashOffset, Modules: nmod, Firmware: nfw,
			Compressor: b.mod.Image.Compressor.String(), Level: b.mod.Image.Level, BlockSize: b.mod.Image.BlockSize,
		},
		Initrd: InitrdInfo{SHA256: sum(rd), Size: int64(len(rd)), Compression: "zstd-best", EarlyModules: cfg.EarlyModules,
			SecurityVersion: cfg.SecurityVersion, BuildID: cfg.BuildID},
		UKI:            UKIInfo{File: UKIFile, Cmdline: b.opts.Cmdline, Signed: b.opts.SigningKey != nil, PCRPolicy: b.opts.PCRKey != nil},
		Inputs:         InputsInfo{InitosInitSHA256: sum(b.in.init), StubSHA256: sum(b.in.stub), Epoch: b.epoch()},
		SkippedKernels: b.r.others(b.mod.Release),
	}
	if m.SkippedKernels == nil {
		m.SkippedKernels = []string{}
	}
	if b.opts.SigningCert != nil {
		m.UKI.Signer = b.opts.SigningCert.Subject.String()
	}
	return m
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hashFile returns the sha256 of a file's content, read from the start.
func hashFile(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return "", fmt.Errorf("hash %s: %w", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
