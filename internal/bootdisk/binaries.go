package bootdisk

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Import paths of the binaries the disks carry.
const (
	initosInitPkg = "initos/cmd/initos-init"
	rootInitPkg   = "initos/internal/bootdisk/rootinit"
	abInitPkg     = "initos/internal/bootdisk/abinit"
	initosPkg     = "initos/cmd/initos"
)

// goBuild builds pkg statically for linux/amd64 (the VMs' architecture)
// and returns the binary.
func goBuild(pkg string) ([]byte, error) { return goBuildArch(pkg, "amd64") }

// goBuildArch builds pkg statically for linux/goarch.
func goBuildArch(pkg, goarch string) ([]byte, error) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir, err := os.MkdirTemp("", "bootdisk-build")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// InitosInit returns the initos-init binary, built once per process.
var InitosInit = sync.OnceValues(func() ([]byte, error) { return goBuild(initosInitPkg) })

// RootInit returns the root's test init (package rootinit), built once.
var RootInit = sync.OnceValues(func() ([]byte, error) { return goBuild(rootInitPkg) })

// ABInit returns the A/B upgrade test root's init (package abinit), built once.
var ABInit = sync.OnceValues(func() ([]byte, error) { return goBuild(abInitPkg) })

// Initos returns the initos CLI, built once.
var Initos = sync.OnceValues(func() ([]byte, error) { return goBuild(initosPkg) })
