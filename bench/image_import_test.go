package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"initos/internal/testenv"
)

// BenchmarkImageImport makes a one-layer OCI image of a ~500 MB, ~50k
// entry root directory (page cache warm), process against process in the
// same iteration:
//
//	initos image import DIR oci:OUT --compress gzip|zstd
//	tar --sort=name --numeric-owner --format=posix -c DIR | tee >(openssl dgst -sha256) |
//	    pigz -6 -n | tee >(openssl dgst -sha256) > BLOB; sync BLOB   (zstd -3 -T0 for zstd)
//
// Both sort, hash the uncompressed tar (diffID) and the blob (digest) and
// fsync the blob. It reports MB/s of file content, x_peer (peer wall /
// ours), cpu_x_peer (peer CPU / ours, getrusage of the children) and the
// blob sizes, from the fastest iteration of each. The order alternates
// between iterations; use -benchtime 3x on a shared machine.
//
// The buildah sub-benchmarks (benchImageBuildah) compare the same import
// of a root tar, the debianhost root, with buildah, docker build's
// equivalent here (no registry is reachable, so no FROM image: the
// image is built from scratch).
func BenchmarkImageImport(b *testing.B) {
	tarTool := testenv.Tool(b, "tar")
	pigz := testenv.Tool(b, "pigz")
	zstdTool := testenv.Tool(b, "zstd")
	bash := testenv.Tool(b, "bash")
	openssl := testenv.Tool(b, "openssl") // SHA-NI, as ours; coreutils' sha256sum is 7x slower
	dir := b.TempDir()
	bin := imageBenchBinary(b, dir)
	b.Run("buildah", func(b *testing.B) { benchImageBuildah(b, bin) })
	_, bytes := imageBenchBuild(b, dir)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	if out, err := exec.Command(tarTool, "-x", "-C", root, "-f", filepath.Join(dir, "flat.tar")).CombinedOutput(); err != nil {
		b.Fatalf("tar -x: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(dir, "flat.tar"))
	// Write the extracted tree back: every run then starts with a clean
	// page cache that still holds the tree.
	syscall.Sync()
	peers := map[string]string{"gzip": pigz + " -6 -n", "zstd": zstdTool + " -3 -T0 -q"}
	for _, c := range []string{"gzip", "zstd"} {
		b.Run(c, func(b *testing.B) {
			b.SetBytes(bytes)
			var ours, peer imageBenchBest
			var ourSize, peerSize int64
			for i := 0; b.Loop(); i++ {
				out := filepath.Join(dir, "out")
				os.Mkdir(out, 0o755)
				blob := filepath.Join(out, "blob")
				script := `set -e; mkfifo "$1/u" "$1/c"; ` + openssl + ` dgst -sha256 <"$1/u" >/dev/null & ` + openssl + ` dgst -sha256 <"$1/c" >/dev/null &
` + tarTool + ` --sort=name --numeric-owner --format=posix --pax-option=delete=atime,delete=ctime -C "$2" -c . |
tee "$1/u" | ` + peers[c] + ` | tee "$1/c" >"$3"; wait; sync "$3"`
				steps := []func(){
					func() {
						imageBenchRun(b, &ours, []string{bin, "image", "import", root, "oci:" + filepath.Join(out, "layout"), "--compress", c, "--progress=false"})
					},
					func() { imageBenchRun(b, &peer, []string{bash, "-c", script, "peer", out, root, blob}) },
				}
				steps[i%2]()
				steps[1-i%2]()
				b.StopTimer()
				ourSize, peerSize = imageBenchDirSize(b, filepath.Join(out, "layout", "blobs")), imageBenchDirSize(b, blob)
				os.RemoveAll(out)
				b.StartTimer()
			}
			b.Logf("%s: %d MB of files; fastest initos %v (cpu %v, layer %d MB), tar|%s %v (cpu %v, %d MB); machine shared",
				c, bytes/1e6, ours.wall, ours.cpu, ourSize/1e6, peers[c], peer.wall, peer.cpu, peerSize/1e6)
			b.ReportMetric(float64(bytes)/ours.wall.Seconds()/1e6, "MB/s")
			b.ReportMetric(peer.wall.Seconds()/ours.wall.Seconds(), "x_peer")
			b.ReportMetric(peer.cpu.Seconds()/ours.cpu.Seconds(), "cpu_x_peer")
			b.ReportMetric(float64(ourSize)/float64(peerSize), "size_vs_peer")
		})
	}
}

// imageBenchDirSize is the total size of the files under p.
func imageBenchDirSize(b *testing.B, p string) int64 {
	var n int64
	filepath.Walk(p, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	return n
}
