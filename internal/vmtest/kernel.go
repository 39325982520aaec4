package vmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Environment knobs (see docs/vmtest.md).
const (
	envKernel       = "INITOS_VMTEST_KERNEL"        // kernel image to boot
	envModules      = "INITOS_VMTEST_MODULES"       // its /lib/modules/<version> directory
	envQEMU         = "INITOS_VMTEST_QEMU"          // qemu-system-x86_64 binary
	envVerbose      = "INITOS_VMTEST_VERBOSE"       // "1": log the guest console live
	envKeep         = "INITOS_VMTEST_KEEP"          // "1": keep the work directory
	envTimeoutScale = "INITOS_VMTEST_TIMEOUT_SCALE" // multiplies Config.Timeout
	envNoPVH        = "INITOS_VMTEST_NOPVH"         // "1": boot the bzImage, not the PVH vmlinux
)

// Kernel is a bootable kernel image and its modules directory.
type Kernel struct {
	Image      string // e.g. /boot/vmlinuz-VERSION
	Version    string // e.g. the text after "vmlinuz-"
	ModulesDir string // e.g. /lib/modules/VERSION
}

// FindKernel returns the kernel the harness boots: INITOS_VMTEST_KERNEL
// (modules from INITOS_VMTEST_MODULES or /lib/modules/<version>) or else
// the newest /boot/vmlinuz-<version> that has a /lib/modules/<version>.
// It never looks at the running kernel: the host's kernel is not the one
// under test. The result is computed once per process.
func FindKernel() (Kernel, error) { return findKernelOnce() }

var findKernelOnce = sync.OnceValues(func() (Kernel, error) {
	return findKernel("/boot", "/lib/modules", os.Getenv(envKernel), os.Getenv(envModules))
})

func findKernel(bootDir, modulesRoot, image, modulesDir string) (Kernel, error) {
	if image != "" {
		return kernelFor(image, modulesRoot, modulesDir)
	}
	images, err := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	if err != nil {
		return Kernel{}, fmt.Errorf("find kernel: %w", err)
	}
	slices.SortFunc(images, compareVersions)
	for _, img := range slices.Backward(images) {
		if k, err := kernelFor(img, modulesRoot, ""); err == nil {
			return k, nil
		}
	}
	return Kernel{}, fmt.Errorf("find kernel: no %s/vmlinuz-* with a matching %s/<version>/modules.dep (install linux-image-amd64 or set %s)",
		bootDir, modulesRoot, envKernel)
}

func kernelFor(image, modulesRoot, modulesDir string) (Kernel, error) {
	if _, err := os.Stat(image); err != nil {
		return Kernel{}, fmt.Errorf("find kernel: %w", err)
	}
	version := strings.TrimPrefix(filepath.Base(image), "vmlinuz-")
	if modulesDir == "" {
		modulesDir = filepath.Join(modulesRoot, version)
	}
	if _, err := os.Stat(filepath.Join(modulesDir, "modules.dep")); err != nil {
		return Kernel{}, fmt.Errorf("find kernel %s: modules directory: %w", image, err)
	}
	return Kernel{Image: image, Version: version, ModulesDir: modulesDir}, nil
}

// compareVersions orders strings with embedded numbers naturally
// (vmlinuz-6.1.0-9 < vmlinuz-6.1.0-10).
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := splitNumber(a)
		nb, rb := splitNumber(b)
		if na >= 0 && nb >= 0 {
			if na != nb {
				return na - nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

// splitNumber returns the decimal number at the start of s (or -1) and the rest.
func splitNumber(s string) (int, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return -1, s
	}
	return n, s[i:]
}

var errNoQEMU = errors.New("qemu-system-x86_64 not found")
