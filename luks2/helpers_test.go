package luks2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"initos/internal/testenv"
)

// fastPBKDF are tiny PBKDF costs so the oracle matrix stays quick.
var fastPBKDF = map[string]PBKDF{
	"argon2id": {Type: "argon2id", Memory: 32, Parallel: 1, Iterations: 4},
	"argon2i":  {Type: "argon2i", Memory: 64, Parallel: 2, Iterations: 4},
	"pbkdf2":   {Type: "pbkdf2", Iterations: 1000},
}

// pbkdfArgs returns the cryptsetup flags matching p.
func pbkdfArgs(p PBKDF) []string {
	args := []string{"--pbkdf", p.Type, "--pbkdf-force-iterations", itoa(p.Iterations)}
	if p.Type != "pbkdf2" {
		args = append(args, "--pbkdf-memory", itoa(p.Memory), "--pbkdf-parallel", itoa(p.Parallel))
	}
	return args
}

func itoa(n int) string { return strconv.Itoa(n) }

// newImage returns the path of a sparse image of size bytes.
func newImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vol.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// keyFile writes pass to a file and returns its path.
func keyFile(t *testing.T, pass string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cryptsetup runs the oracle and returns its stdout and whether it exited 0.
func cryptsetup(t *testing.T, args ...string) ([]byte, bool) {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "cryptsetup"), append([]string{"--batch-mode"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("cryptsetup %q: %v: %s", args, err, stderr.Bytes())
	}
	return out, err == nil
}

// openFileRW opens path for the header operations.
func openFileRW(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dumpVolumeKey returns the volume key cryptsetup recovers with keyFile.
func dumpVolumeKey(t *testing.T, img, key string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vk")
	if _, ok := cryptsetup(t, "luksDump", "--dump-volume-key", "--volume-key-file", out, "--key-file", key, img); !ok {
		t.Fatalf("cryptsetup luksDump --dump-volume-key %s failed", img)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
