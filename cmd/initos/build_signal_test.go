package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bt "initos/internal/buildtest"
)

// TestBuildCLISIGTERM stops a real `initos build` process with SIGTERM
// while it compresses the modules image: exit 143, OUT left empty.
func TestBuildCLISIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the initos binary")
	}
	dir := t.TempDir()
	bin := buildCLI(t)
	// 48 MiB of compressible, not trivially so, module: seconds at level 22.
	words := []string{"module ", "symbol ", "kernel ", "firmware ", "verity ", "squashfs "}
	rng := rand.New(rand.NewPCG(1, 2))
	var big strings.Builder
	for big.Len() < 48<<20 {
		big.WriteString(words[rng.IntN(len(words))])
	}
	m := "usr/lib/modules/1.0/"
	src := bt.WriteImage(t, []bt.Ent{bt.File(m+"modules.dep", "kernel/big.ko:\n"), bt.File(m+"kernel/big.ko", big.String()),
		bt.File("boot/vmlinuz-1.0", string(bt.FakeKernel(t)))})
	keys := filepath.Join(dir, "keys")
	bt.WriteKeys(t, keys)
	init := filepath.Join(dir, "initos-init")
	os.WriteFile(init, []byte("fake"), 0o755)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(bin, "build", "--from-image", src, "--keys", keys, "--init", init, "--stub", bt.StubAMD64, "--level", "22", "-o", out)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	signalWhenWriting(t, cmd, out, syscall.SIGTERM)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Fatalf("terminated build: %v (stderr %q), want exit status 143 (128+SIGTERM)", err, stderr.String())
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("terminated build left %v in the output directory", ents)
	}
}
