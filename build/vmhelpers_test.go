//go:build !vmguest

package build_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"initos/build"
	"initos/internal/bootdisk"
	bt "initos/internal/buildtest"
)

// buildForVM builds src for a q35 VM (bootdisk.BuildForVM) and returns
// the manifest and the outputs' bytes.
func buildForVM(t *testing.T, src, dir string, sb *bootdisk.SecureBootKey, cmdline string) (*build.Manifest, map[string][]byte) {
	m, out, err := bootdisk.BuildForVM(context.Background(), src, dir, sb, cmdline, bt.Time)
	if err != nil {
		t.Fatal(err)
	}
	return m, bt.ReadOut(t, out)
}

// scaled multiplies a VM timeout by $INITOS_VMTEST_TIMEOUT_SCALE.
func scaled(d time.Duration) time.Duration {
	var f float64
	if _, err := fmt.Sscan(os.Getenv("INITOS_VMTEST_TIMEOUT_SCALE"), &f); err == nil && f > 0 {
		return time.Duration(float64(d) * f)
	}
	return d
}
