package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSqfsBuildSIGINT interrupts a real `initos sqfs build` process with
// SIGINT while it compresses: it must fail and leave nothing in the
// output directory (no image, no temporary file).
func TestSqfsBuildSIGINT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the initos binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "initos")
	if b, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 64 { // 256 MiB of compressible data: seconds of work
		f, err := os.Create(filepath.Join(src, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))))
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(strings.Repeat("squashfs interrupted "+string(rune('a'+i%26)), 200000))
		f.Close()
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "sqfs", "build", "--level", "19", src, filepath.Join(out, "img.sqfs"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the temporary output file: the build is under way.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if ents, _ := os.ReadDir(out); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no temporary output file appeared within a minute")
		}
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted build: %v, want exit status 130 (128+SIGINT)", err)
	}
	if !strings.Contains(stderr.String(), "interrupt") {
		t.Errorf("interrupted build printed %q, want it to say the build was cancelled", stderr.String())
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("interrupted build left %v in the output directory", ents)
	}
}
