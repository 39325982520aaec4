package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	bin := buildCLI(t)
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
	signalWhenWriting(t, cmd, out, syscall.SIGINT)
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

// signalWhenWriting starts cmd, waits until a (temporary) file appears in
// out, so that the work is under way, lets it run 200 ms more and sends
// sig. The caller waits for cmd.
func signalWhenWriting(t *testing.T, cmd *exec.Cmd, out string, sig os.Signal) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	cmd.Process.Signal(sig)
}
