package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/luks2"
)

// luksCase is one PBKDF configuration of the unlock benchmark.
type luksCase struct {
	name string
	args []string // cryptsetup luksFormat PBKDF flags
}

var luksCases = []luksCase{
	{"argon2id-1GiB-t4-p2", []string{"--pbkdf", "argon2id", "--pbkdf-memory", "1048576", "--pbkdf-parallel", "2", "--pbkdf-force-iterations", "4"}},
	{"pbkdf2-1000", []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}},
}

// luksImage formats a 20 MiB image with cryptsetup and returns it and
// its key file.
func luksImage(b *testing.B, args []string) (img, key string) {
	b.Helper()
	dir := b.TempDir()
	img, key = filepath.Join(dir, "vol.img"), filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("benchmark passphrase"), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 20<<20); err != nil {
		b.Fatal(err)
	}
	testenv.Run(b, "cryptsetup", append([]string{"luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key}, append(args, img)...)...)
	return img, key
}

// luksTime runs f and returns its wall time.
func luksTime(b *testing.B, f func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// luksOpenOurs reads the header and unlocks it, like the initrd does.
func luksOpenOurs(img string, pass []byte) error {
	f, err := os.Open(img)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := luks2.ReadHeader(f)
	if err != nil {
		return err
	}
	vk, _, err := h.Unlock(f, pass)
	vk.Destroy()
	return err
}

// luksBuildCLI builds the initos command for the process-level comparison.
func luksBuildCLI(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "initos")
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "initos/cmd/initos").CombinedOutput()
	if err != nil {
		b.Fatalf("go build initos: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkLuksUnlock unlocks the same cryptsetup-made volume, alternately
// in the same run, with `cryptsetup open --test-passphrase`, with
// `initos luks test-passphrase` (a fresh process each time, as in the
// initrd: the argon2 memory is fresh) and with the library in process
// (memory returned to the OS before each run). It reports the wall times
// and x_cryptsetup = initos CLI / cryptsetup (goal <= 1.0).
func BenchmarkLuksUnlock(b *testing.B) {
	cs := testenv.Tool(b, "cryptsetup")
	cli := luksBuildCLI(b)
	for _, c := range luksCases {
		b.Run(c.name, func(b *testing.B) {
			img, key := luksImage(b, c.args)
			pass, _ := os.ReadFile(key)
			var lib, ours, theirs time.Duration
			for b.Loop() {
				theirs += luksTime(b, exec.Command(cs, "open", "--test-passphrase", "--key-file", key, img).Run)
				ours += luksTime(b, exec.Command(cli, "luks", "test-passphrase", "--key-file", key, img).Run)
				debug.FreeOSMemory()
				lib += luksTime(b, func() error { return luksOpenOurs(img, pass) })
			}
			n := float64(b.N)
			b.ReportMetric(lib.Seconds()/n, "initos-lib-s/op")
			b.ReportMetric(ours.Seconds()/n, "initos-cli-s/op")
			b.ReportMetric(theirs.Seconds()/n, "cryptsetup-s/op")
			b.ReportMetric(ours.Seconds()/theirs.Seconds(), "x_cryptsetup")
		})
	}
}

// BenchmarkLuksFormat formats a 20 MiB image with luks2.FormatFile and
// with `cryptsetup luksFormat`, same parameters (aes-xts-plain64 512-bit,
// pbkdf2 1000 iterations), in the same run.
func BenchmarkLuksFormat(b *testing.B) {
	cs := testenv.Tool(b, "cryptsetup")
	dir := b.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("pw"), 0o600); err != nil {
		b.Fatal(err)
	}
	fresh := func(i int) string {
		p := filepath.Join(dir, "vol"+strconv.Itoa(i))
		os.WriteFile(p, nil, 0o600)
		os.Truncate(p, 20<<20)
		return p
	}
	opts := luks2.FormatOptions{PBKDF: luks2.PBKDF{Type: "pbkdf2", Iterations: 1000}}
	var ours, theirs time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		img := fresh(i)
		ours += luksTime(b, func() error { _, err := luks2.FormatFile(img, 0, []byte("pw"), opts); return err })
		img2 := fresh(-i)
		theirs += luksTime(b, exec.Command(cs, "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key,
			"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", img2).Run)
		os.Remove(img)
		os.Remove(img2)
	}
	b.ReportMetric(ours.Seconds()/float64(b.N), "initos-s/op")
	b.ReportMetric(theirs.Seconds()/float64(b.N), "cryptsetup-s/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "x_cryptsetup")
}
