package bench

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/squashfs"
)

// sqfsPair is one comparison: our setting against a mksquashfs level, on
// the same tree, same block size unless ours says otherwise.
type sqfsPair struct {
	name      string
	level     int // initos --level
	blockSize string
	mksqLevel int // mksquashfs -Xcompression-level
}

var sqfsPairs = []sqfsPair{
	{"L1_vs_mksq1", 1, "128K", 1},
	{"L3_vs_mksq3", 3, "128K", 3},
	{"L7_vs_mksq9", 7, "128K", 9},
	{"L19_vs_mksq15", 19, "128K", 15},
	{"L3-1M_vs_mksq15", 3, "1M", 15},
	{"L7-1M_vs_mksq15", 7, "1M", 15},
}

// BenchmarkSquashfs builds zstd images of Debian's
// /lib/modules/<installed kernel> and of /usr/share with `initos sqfs
// build` and with `mksquashfs -comp zstd` (all cores, 128 KiB blocks, no
// padding difference), process against process, interleaved in each
// iteration, each output fsynced (our CLI fsyncs; mksquashfs's output is
// fsynced after it exits), page cache warm. It reports for the fastest
// iteration of each tool: wall seconds, CPU seconds (user+sys of the
// process), image MB, peak RSS MB, and the ratios x_wall and x_cpu
// (mksquashfs / initos: above 1 is faster) and size_ratio (initos /
// mksquashfs). Use -benchtime 3x on a shared machine.
func BenchmarkSquashfs(b *testing.B) {
	mksq := testenv.Tool(b, "mksquashfs")
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "Debian kernel modules: %v", err)
	}
	cli := buildInitos(b)
	for _, tree := range []struct{ name, dir string }{{"modules", k.ModulesDir}, {"usr-share", "/usr/share"}} {
		sqfsWarm(b, tree.dir)
		for _, p := range sqfsPairs {
			b.Run(tree.name+"/"+p.name, func(b *testing.B) {
				dir := b.TempDir()
				var ours, theirs sqfsRun
				for b.Loop() {
					theirs.best(sqfsExec(b, filepath.Join(dir, "mksq.sqfs"), mksq, tree.dir, filepath.Join(dir, "mksq.sqfs"),
						"-comp", "zstd", "-Xcompression-level", strconv.Itoa(p.mksqLevel), "-b", "128K",
						"-noappend", "-quiet", "-no-progress"))
					ours.best(sqfsExec(b, filepath.Join(dir, "ours.sqfs"), cli, "sqfs", "build",
						"--level", strconv.Itoa(p.level), "--block-size", p.blockSize, "--progress=false",
						tree.dir, filepath.Join(dir, "ours.sqfs")))
				}
				sqfsReport(b, ours, theirs)
			})
		}
	}
}

// sqfsRun is the best of a tool's runs.
type sqfsRun struct {
	wall, cpu time.Duration
	size, rss int64
}

func (r *sqfsRun) best(n sqfsRun) {
	if r.wall == 0 || n.wall < r.wall {
		r.wall = n.wall
	}
	if r.cpu == 0 || n.cpu < r.cpu {
		r.cpu = n.cpu
	}
	r.size, r.rss = n.size, max(r.rss, n.rss)
}

// sqfsExec runs a build command, fsyncs its output and measures it.
func sqfsExec(b *testing.B, out, name string, args ...string) sqfsRun {
	os.Remove(out)
	start := time.Now()
	cmd := exec.Command(name, args...)
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, o)
	}
	f, err := os.Open(out)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return sqfsRun{wall: wall, cpu: cpu, size: st.Size(), rss: ru.Maxrss << 10}
}

func sqfsReport(b *testing.B, ours, theirs sqfsRun) {
	b.ReportMetric(ours.wall.Seconds(), "wall_s")
	b.ReportMetric(ours.cpu.Seconds(), "cpu_s")
	b.ReportMetric(float64(ours.size)/1e6, "MB")
	b.ReportMetric(float64(ours.rss)/1e6, "rss_MB")
	b.ReportMetric(theirs.wall.Seconds(), "mksq_wall_s")
	b.ReportMetric(theirs.cpu.Seconds(), "mksq_cpu_s")
	b.ReportMetric(float64(theirs.size)/1e6, "mksq_MB")
	b.ReportMetric(float64(theirs.rss)/1e6, "mksq_rss_MB")
	b.ReportMetric(theirs.wall.Seconds()/ours.wall.Seconds(), "x_wall")
	b.ReportMetric(theirs.cpu.Seconds()/ours.cpu.Seconds(), "x_cpu")
	b.ReportMetric(float64(ours.size)/float64(theirs.size), "size_ratio")
	b.ReportMetric(0, "ns/op")
}

// sqfsWarm reads every file of a tree once, so that both tools find it in
// the page cache.
func sqfsWarm(b *testing.B, dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if f, err := os.Open(p); err == nil {
				io.Copy(io.Discard, f)
				f.Close()
			}
		}
		return nil
	})
}

// BenchmarkSquashfsCeiling is the pure-Go ceiling the writer is measured
// against: klauspost zstd EncodeAll over the modules tree in memory, cut
// into 128 KiB blocks with every tail packed into fragment blocks, on
// GOMAXPROCS goroutines, nothing else (no reading, hashing or writing);
// and, interleaved, the whole writer (squashfs.Writer.AddDir into a file,
// in process) at the zstd level of each encoder. cpu_s is the process's
// user+sys time of the best iteration; writer/ceiling_cpu is what the
// writer costs over the bare encoder.
func BenchmarkSquashfsCeiling(b *testing.B) {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(b, "Debian kernel modules: %v", err)
	}
	blocks, total := sqfsBlocks(b, k.ModulesDir, 128<<10)
	for _, c := range []struct {
		lvl  zstd.EncoderLevel
		zstd int
	}{{zstd.SpeedFastest, 1}, {zstd.SpeedDefault, 3}, {zstd.SpeedBetterCompression, 7}, {zstd.SpeedBestCompression, 19}} {
		b.Run(c.lvl.String(), func(b *testing.B) {
			b.SetBytes(total)
			var out int64
			ceil, writer := sqfsBest{who: syscall.RUSAGE_SELF}, sqfsBest{who: syscall.RUSAGE_SELF}
			img := filepath.Join(b.TempDir(), "img.sqfs")
			for b.Loop() {
				ceil.begin()
				out = sqfsCompressAll(blocks, c.lvl)
				ceil.end()
				writer.begin()
				sqfsWriter(b, k.ModulesDir, img, c.zstd)
				writer.end()
			}
			b.ReportMetric(float64(out)/1e6, "MB")
			b.ReportMetric(ceil.cpu.Seconds(), "cpu_s")
			b.ReportMetric(writer.cpu.Seconds(), "writer_cpu_s")
			b.ReportMetric(writer.d.Seconds(), "writer_wall_s")
			b.ReportMetric(writer.cpu.Seconds()/ceil.cpu.Seconds(), "writer/ceiling_cpu")
		})
	}
}

// sqfsWriter builds an image of dir in process.
func sqfsWriter(b *testing.B, dir, img string, level int) {
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := squashfs.NewWriter(context.Background(), f, squashfs.Options{Level: level})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.AddDir(dir); err != nil {
		b.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		b.Fatal(err)
	}
}

// sqfsBlocks reads a tree in sorted order into blocks: full blocks of
// each file, and its tail packed into shared fragment blocks.
func sqfsBlocks(b *testing.B, dir string, bs int) ([][]byte, int64) {
	var blocks [][]byte
	var frag []byte
	var total int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
		for ; len(data) >= bs; data = data[bs:] {
			blocks = append(blocks, data[:bs])
		}
		if len(frag)+len(data) > bs {
			blocks, frag = append(blocks, frag), nil
		}
		frag = append(frag, data...)
		return nil
	})
	return append(blocks, frag), total
}

// sqfsCompressAll compresses blocks on GOMAXPROCS goroutines, one
// encoder each, and returns the stored size (raw when not smaller).
func sqfsCompressAll(blocks [][]byte, lvl zstd.EncoderLevel) int64 {
	var mu sync.Mutex
	var total int64
	ch := make(chan []byte, 64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1),
				zstd.WithEncoderCRC(false), zstd.WithWindowSize(128<<10))
			var dst []byte
			var n int64
			for blk := range ch {
				dst = enc.EncodeAll(blk, dst[:0])
				n += int64(min(len(dst), len(blk)))
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	for _, blk := range blocks {
		ch <- blk
	}
	close(ch)
	wg.Wait()
	return total
}

// sqfsBest keeps the best wall and CPU time over iterations.
type sqfsBest struct {
	who   int // syscall.RUSAGE_SELF or RUSAGE_CHILDREN
	d     time.Duration
	cpu   time.Duration
	start time.Time
	cpu0  time.Duration
}

func (v *sqfsBest) begin() { v.start, v.cpu0 = time.Now(), verityCPU(v.who) }

func (v *sqfsBest) end() {
	if d := time.Since(v.start); v.d == 0 || d < v.d {
		v.d = d
	}
	if c := verityCPU(v.who) - v.cpu0; v.cpu == 0 || c < v.cpu {
		v.cpu = c
	}
}
