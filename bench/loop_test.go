package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/loop"
)

// BenchmarkLoopAttach attaches a file read-only to a loop device and
// detaches it again, with initos/loop and with `losetup --find --show
// --read-only` + `losetup --detach`, in the same iteration. It reports
// both times and x_losetup = losetup time / initos time (goal >= 1: the
// initrd sets up its verity image without a C tool and no slower).
func BenchmarkLoopAttach(b *testing.B) {
	testenv.RequireRoot(b)
	losetup := testenv.Tool(b, "losetup")
	img := filepath.Join(b.TempDir(), "loop.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var ours, theirs time.Duration
	for b.Loop() {
		start := time.Now()
		d, err := loop.Attach(img, loop.Config{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Detach(); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		start = time.Now()
		out, err := exec.Command(losetup, "--find", "--show", "--read-only", img).Output()
		if err != nil {
			b.Fatalf("losetup: %v", err)
		}
		if err := exec.Command(losetup, "--detach", strings.TrimSpace(string(out))).Run(); err != nil {
			b.Fatalf("losetup --detach: %v", err)
		}
		theirs += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(ours.Microseconds())/n, "initos-us/op")
	b.ReportMetric(float64(theirs.Microseconds())/n, "losetup-us/op")
	b.ReportMetric(float64(theirs)/float64(ours), "x_losetup")
}
