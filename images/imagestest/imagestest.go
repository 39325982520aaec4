// Package imagestest builds InitOS's images (images/NAME/build.sh) for
// tests: once per test process and name, on top of the scripts' own cache
// keyed by the recipe's inputs, so that only the first build on a machine
// runs mmdebstrap (minutes) and later ones take seconds.
package imagestest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"initos/internal/testenv"
)

// RepoRoot returns the repository's root directory (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

type result struct {
	ref  string
	log  string
	took time.Duration
	err  error
}

var builds sync.Map // name + args -> *sync.OnceValue

// Build returns the OCI reference (oci:DIR:TAG) of the image NAME built
// by images/NAME/build.sh with args. It needs root and mmdebstrap (and
// Debian's mirror on the first build): a missing tool skips t on a
// developer machine and fails it under CI=true.
func Build(t testing.TB, name string, args ...string) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Tool(t, "mmdebstrap")
	key := strings.Join(append([]string{name}, args...), "\x00")
	f, _ := builds.LoadOrStore(key, sync.OnceValue(func() result { return build(name, args) }))
	r := f.(func() result)()
	if r.err != nil {
		t.Fatalf("images/%s/build.sh %s: %v\n%s", name, strings.Join(args, " "), r.err, r.log)
	}
	t.Logf("images/%s: %s (build.sh took %v in this process)", name, r.ref, r.took.Round(100*time.Millisecond))
	return r.ref
}

func build(name string, args []string) result {
	script := filepath.Join(RepoRoot(), "images", name, "build.sh")
	start := time.Now()
	cmd := exec.Command(script, args...)
	cmd.Dir = RepoRoot()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(runtime.GOROOT(), "bin")+":"+os.Getenv("PATH"))
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	ref := lines[len(lines)-1]
	if err == nil && !strings.HasPrefix(ref, "oci:") {
		err = errNoRef(ref)
	}
	return result{ref: ref, log: stderr.String(), took: time.Since(start), err: err}
}

type errNoRef string

func (e errNoRef) Error() string {
	return "no oci: reference on the last line of the output: " + string(e)
}

// Layout returns the layout directory and tag of an oci:DIR:TAG reference.
func Layout(ref string) (dir, tag string) {
	dir, tag, _ = strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
	return dir, tag
}
