package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestNotProcessOne(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"initos-init"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "not process 1") {
		t.Errorf("run() outside an initrd = %v, want not process 1", err)
	}
}

// TestStaticBuilds: initos-init builds with CGO_ENABLED=0 for amd64 and
// arm64 into static ELF binaries (no interpreter, no dynamic section).
func TestStaticBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		bin := filepath.Join(t.TempDir(), "initos-init")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build (%s): %v\n%s", arch, err, out)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s build has a %v segment: not static", arch, p.Type)
			}
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
		if f.Machine != want {
			t.Errorf("%s build is for %v", arch, f.Machine)
		}
		f.Close()
	}
}
