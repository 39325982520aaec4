// Package testenv holds the privilege-tier helpers shared by InitOS tests.
//
// Tiers: 0 pure logic (runs everywhere); 1 root + loop devices on the host;
// 2 inside the harness VM (see internal/vmtest); 3 full UEFI Secure Boot +
// swtpm boots. A test declares what it needs with the Require* helpers.
//
// Oracle tools (veritysetup, cryptsetup, sbverify, ...) are skipped only when
// truly absent on a developer machine: under CI (CI=true) a missing tool is a
// test failure, because .ci/run installs every oracle and an interop test
// that skips proves nothing.
package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under .ci/run (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips t unless the test runs as root (tier 1 and above).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if InCI() {
			t.Fatal("test needs root, and CI runs as root: check the CI environment")
		}
		t.Skip("needs root (tier 1)")
	}
}

// Missing reports that a prerequisite of t is absent: an oracle tool, the
// Debian kernel, or a fixture an installed package makes (its initrd, its
// modules). It skips t on a developer machine and fails t under CI, where
// scripts/setup.sh installs every prerequisite. The message says what is
// missing and which package provides it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s: CI installs every test prerequisite, so its absence is a failure (see scripts/setup.sh)", msg)
		return
	}
	t.Skip(msg)
}

// Tool returns the path of an oracle program. It skips t when the program
// is missing on a developer machine and fails t when it is missing in CI.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "oracle %s is not installed", name)
	}
	return p
}

// Run runs an oracle command and fails t with its combined output when it
// exits non-zero. It returns stdout.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, stderr.Bytes())
	}
	return out
}
