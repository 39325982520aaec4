package demo

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// TestDemo runs scripts/demo.sh, as `make demo` does, with a freshly built
// initos, and checks the lines that prove each step (tier 3: four OVMF
// boots under TCG, about 40 s here).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("tier 3: boots OVMF four times under TCG")
	}
	for _, tool := range []string{"qemu-system-x86_64", "swtpm", "mkfs.vfat", "mmd", "mcopy"} {
		testenv.Tool(t, tool)
	}
	if _, err := vmtest.FindKernel(); err != nil {
		testenv.Missing(t, "%v", err)
	}
	out := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", out, "initos/cmd/initos")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build initos: %v\n%s", err, b)
	}
	script, err := filepath.Abs("../../scripts/demo.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, out)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	err = cmd.Run()
	got := console.String()
	if err != nil {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, got)
	}
	for _, want := range []string{
		"data block 77 (offset 315392) is corrupt",
		"image digest does not match",
		"initos-demo: enrolled db, KEK and PK (db=CN=InitOS_demo_db); SetupMode=0 now",
		"initos-demo: Secure Boot: SecureBoot=1 SetupMode=0 db=CN=InitOS_demo_db",
		"initos-demo: SUCCESS: read ",
		"initos-demo: REFUSED: reading /dev/mapper/initos-demo failed with EIO at byte 315392 (data block 77)",
		"Access Denied",
		"== InitOS demo: OK in ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("scripts/demo.sh output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scripts/demo.sh output:\n%s", got)
	}
}
