//go:build !vmguest

package build_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"initos/bootconfig"
	"initos/build"
	"initos/internal/bootdisk"
	bt "initos/internal/buildtest"
)

// buildForVM builds src with the snakeoil db key, the bootdisk PCR key,
// the real initos-init and the early modules a q35 VM needs.
func buildForVM(t *testing.T, src, dir string, sb *bootdisk.SecureBootKey, cmdline string) (*build.Manifest, map[string][]byte) {
	bin, err := bootdisk.InitosInit()
	if err != nil {
		t.Fatal(err)
	}
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := bootconfig.New()
	cfg.FailureTimeoutSec = 1
	opts := build.Options{Source: src, OutDir: filepath.Join(dir, "out"), Init: init, Cmdline: cmdline,
		Modules: bootdisk.VMModules, Config: cfg, SigningKey: sb.Key, SigningCert: sb.Cert, PCRKey: bootdisk.PCRKey(), Epoch: bt.Time}
	m, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, bt.ReadOut(t, opts.OutDir)
}

// scaled multiplies a VM timeout by $INITOS_VMTEST_TIMEOUT_SCALE.
func scaled(d time.Duration) time.Duration {
	var f float64
	if _, err := fmt.Sscan(os.Getenv("INITOS_VMTEST_TIMEOUT_SCALE"), &f); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}
