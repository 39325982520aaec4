package bootdisk

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"initos/bootconfig"
	"initos/build"
)

// BuildForVM runs `initos build` (the library) on the host image src the
// way the VM tests and benchmarks build a host: the real initos-init,
// the early modules a q35 VM needs (VMModules), a one-second failure
// timeout, sb's db key, the test PCR key and the fixed time epoch. The
// outputs land in dir/out, which it returns with the manifest.
func BuildForVM(ctx context.Context, src, dir string, sb *SecureBootKey, cmdline string, epoch time.Time) (*build.Manifest, string, error) {
	bin, err := InitosInit()
	if err != nil {
		return nil, "", err
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		return nil, "", err
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	out := filepath.Join(dir, "out")
	opts := build.Options{Source: src, OutDir: out, Init: init, Cmdline: cmdline,
		Modules: VMModules, Config: cfg, SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: PCRKey(), Epoch: epoch}
	m, err := build.Build(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	return m, out, nil
}
