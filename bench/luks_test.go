package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"initos/internal/testenv"
)

// The LUKS benchmarks compare processes with processes, as users run
// them: `initos luks ...` against `cryptsetup ...` on the same image and
// key file, same PBKDF costs, alternating in the same run. Each reports,
// per operation and per tool, the wall time, the CPU time (user + system
// of the child, from getrusage) and the peak RSS, and the ratios
// initos / cryptsetup of each (x_wall, x_cpu, x_rss). On a machine shared
// with other work, x_cpu is the more stable of the time ratios.

// luksCase is one PBKDF configuration, in cryptsetup's flags (initos luks
// takes the same ones).
type luksCase struct {
	name string
	args []string
}

var luksCases = []luksCase{
	{"argon2id-1GiB-t4-p2", []string{"--pbkdf", "argon2id", "--pbkdf-memory", "1048576", "--pbkdf-parallel", "2", "--pbkdf-force-iterations", "4"}},
	{"pbkdf2-1000", []string{"--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"}},
}

// procStats accumulates the cost of one tool's runs.
type procStats struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes, the largest seen
}

// run runs a command and adds its wall time, CPU time and peak RSS.
func (s *procStats) run(b *testing.B, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	s.wall += time.Since(start)
	if err != nil {
		b.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	st := cmd.ProcessState
	s.cpu += st.UserTime() + st.SystemTime()
	s.maxRSS = max(s.maxRSS, st.SysUsage().(*syscall.Rusage).Maxrss*1024)
}

// selfHWM returns this process's peak RSS (VmHWM) in bytes.
func selfHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// report sets the metrics of ours against theirs. The peak RSS of a child
// is reported only when it exceeds twice this process's own: Go starts
// children with vfork, and Linux then records the parent's high-water mark
// as the child's at exec, so smaller values are this process's, not the
// tool's.
func report(b *testing.B, ours, theirs *procStats) {
	n := float64(b.N)
	if floor := 2 * selfHWM(); ours.maxRSS > floor && theirs.maxRSS > floor {
		b.ReportMetric(float64(ours.maxRSS)/(1<<20), "initos-rss-MiB")
		b.ReportMetric(float64(theirs.maxRSS)/(1<<20), "cryptsetup-rss-MiB")
		b.ReportMetric(float64(ours.maxRSS)/float64(theirs.maxRSS), "x_rss")
	}
	b.ReportMetric(ours.wall.Seconds()/n, "initos-wall-s/op")
	b.ReportMetric(theirs.wall.Seconds()/n, "cryptsetup-wall-s/op")
	b.ReportMetric(ours.cpu.Seconds()/n, "initos-cpu-s/op")
	b.ReportMetric(theirs.cpu.Seconds()/n, "cryptsetup-cpu-s/op")
	b.ReportMetric(ours.wall.Seconds()/theirs.wall.Seconds(), "x_wall")
	b.ReportMetric(ours.cpu.Seconds()/theirs.cpu.Seconds(), "x_cpu")
}

// luksImage returns a fresh sparse 20 MiB image path in dir.
func luksImage(b *testing.B, dir, name string) string {
	b.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, 20<<20); err != nil {
		b.Fatal(err)
	}
	return p
}

// luksKey writes the benchmark passphrase.
func luksKey(b *testing.B, dir string) string {
	b.Helper()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("benchmark passphrase"), 0o600); err != nil {
		b.Fatal(err)
	}
	return key
}

// BenchmarkLuksUnlock unlocks the same cryptsetup-made volume with
// `cryptsetup open --test-passphrase` and `initos luks test-passphrase`,
// a fresh process each (as in the initrd: the argon2 memory is fresh),
// alternating. Goals: x_wall <= 1.0, and peak RSS <= 1.05 x the argon2
// memory (initos-rss-MiB <= 1075 for 1 GiB).
func BenchmarkLuksUnlock(b *testing.B) {
	cs := testenv.Tool(b, "cryptsetup")
	cli := buildInitos(b)
	for _, c := range luksCases {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			img, key := luksImage(b, dir, "vol.img"), luksKey(b, dir)
			testenv.Run(b, "cryptsetup", append([]string{"luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key}, append(c.args, img)...)...)
			var ours, theirs procStats
			for b.Loop() {
				theirs.run(b, cs, "open", "--test-passphrase", "--key-file", key, img)
				ours.run(b, cli, "luks", "test-passphrase", "--key-file", key, img)
			}
			report(b, &ours, &theirs)
		})
	}
}

// BenchmarkLuksFormat formats fresh 20 MiB images with `initos luks
// format` and `cryptsetup luksFormat`, same cipher (aes-xts-plain64,
// 512-bit), same forced PBKDF costs, alternating. Both write the header
// region and sync it; cryptsetup's digest iterations are 1000 with forced
// costs, as ours.
func BenchmarkLuksFormat(b *testing.B) {
	cs := testenv.Tool(b, "cryptsetup")
	cli := buildInitos(b)
	for _, c := range luksCases {
		b.Run(c.name, func(b *testing.B) {
			dir := b.TempDir()
			key := luksKey(b, dir)
			var ours, theirs procStats
			i := 0
			for b.Loop() {
				i++
				img := luksImage(b, dir, "theirs"+strconv.Itoa(i))
				theirs.run(b, cs, append([]string{"luksFormat", "--batch-mode", "--type", "luks2", "--key-file", key}, append(c.args, img)...)...)
				os.Remove(img)
				img = luksImage(b, dir, "ours"+strconv.Itoa(i))
				ours.run(b, cli, append([]string{"luks", "format", "--key-file", key}, append(c.args, img)...)...)
				os.Remove(img)
			}
			report(b, &ours, &theirs)
		})
	}
}
