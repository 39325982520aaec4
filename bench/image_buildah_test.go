package bench

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"initos/images/imagestest"
	"initos/internal/testenv"
)

// imageBenchBuildah is the buildah side of BenchmarkImageImport/buildah:
// an image from scratch holding the root tar ($2), committed straight
// into an OCI layout ($3) with the layer compressed ($4: "gzip") or not
// (""), its blobs synced. buildah add extracts the tar into the working
// container (overlay storage under $1, private to the benchmark) and
// commit diffs that tree back into a tar: that is how buildah (as docker
// build's COPY/ADD) makes a layer.
const imageBenchBuildah = `set -e
B="buildah --root $1/storage --runroot $1/run --storage-driver overlay"
c=$($B from --quiet scratch)
$B add --quiet "$c" "$2" /
D=--disable-compression=true
[ -z "$4" ] || D=--disable-compression=false
$B commit --quiet --format oci $D "$c" "oci:$3:debianhost" >/dev/null
sync "$3"/blobs/sha256/* "$3/index.json"
`

// benchImageBuildah compares, on the debianhost root (the mmdebstrap
// root tar of images/debianhost with initos added, ~560 MB, ~20k
// entries), process against process in alternating order:
//
//	initos image import ROOT.tar oci:OUT:debianhost --compress gzip|none
//	buildah from scratch; buildah add CTR ROOT.tar /;
//	    buildah commit --format oci [--disable-compression=false] CTR oci:OUT:debianhost; sync blobs
//
// (buildah 1.28's commit compresses with gzip or not at all.) The
// working container is removed after each run, untimed. It reports
// x_buildah (buildah wall / ours), cpu_x_buildah (getrusage of the
// children) and size_vs_buildah (the layouts' blobs), from the fastest
// iteration of each.
func benchImageBuildah(b *testing.B, bin string) {
	buildah := testenv.Tool(b, "buildah")
	bash := testenv.Tool(b, "bash")
	src := imagestest.Build(b, "debianhost")
	dir := b.TempDir()
	rootTar := filepath.Join(dir, "root.tar")
	size := imageBenchRootTar(b, src, rootTar)
	for _, c := range []string{"gzip", "none"} {
		b.Run(c, func(b *testing.B) {
			b.SetBytes(size)
			var ours, peer imageBenchBest
			var ourSize, peerSize int64
			for i := 0; b.Loop(); i++ {
				work, out := filepath.Join(dir, "work"), filepath.Join(dir, "out")
				os.MkdirAll(work, 0o755)
				os.MkdirAll(out, 0o755)
				gz := ""
				if c == "gzip" {
					gz = "gzip"
				}
				steps := []func(){
					func() {
						imageBenchRun(b, &ours, []string{bin, "image", "import", rootTar, "oci:" + filepath.Join(out, "ours") + ":debianhost", "--compress", c, "--progress=false"})
					},
					func() {
						imageBenchRun(b, &peer, []string{bash, "-c", imageBenchBuildah, "buildah", work, rootTar, filepath.Join(out, "buildah"), gz})
					},
				}
				steps[i%2]()
				steps[1-i%2]()
				b.StopTimer()
				ourSize = imageBenchDirSize(b, filepath.Join(out, "ours", "blobs"))
				peerSize = imageBenchDirSize(b, filepath.Join(out, "buildah", "blobs"))
				rm := exec.Command(buildah, "--root", filepath.Join(work, "storage"), "--runroot", filepath.Join(work, "run"), "--storage-driver", "overlay", "rm", "--all")
				if o, err := rm.CombinedOutput(); err != nil {
					b.Fatalf("buildah rm: %v\n%s", err, o)
				}
				os.RemoveAll(work)
				os.RemoveAll(out)
				b.StartTimer()
			}
			b.Logf("%s: root tar %d MB; fastest initos image import %v (cpu %v, layout %d MB), buildah from+add+commit %v (cpu %v, layout %d MB); load %s, machine shared",
				c, size/1e6, ours.wall, ours.cpu, ourSize/1e6, peer.wall, peer.cpu, peerSize/1e6, verityLoad())
			b.ReportMetric(peer.wall.Seconds()/ours.wall.Seconds(), "x_buildah")
			b.ReportMetric(peer.cpu.Seconds()/ours.cpu.Seconds(), "cpu_x_buildah")
			b.ReportMetric(float64(ourSize)/float64(peerSize), "size_vs_buildah")
			b.ReportMetric(float64(ourSize)/1e6, "ours_MB")
			b.ReportMetric(float64(peerSize)/1e6, "buildah_MB")
		})
	}
}

// imageBenchRootTar writes the uncompressed layer of the one-layer image
// ref (oci:DIR:TAG) to out and returns its size.
func imageBenchRootTar(b *testing.B, ref, out string) int64 {
	lay, _ := imagestest.Layout(ref)
	p, err := layout.FromPath(lay)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		b.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		b.Fatalf("%s: no manifest (%v)", lay, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		b.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		b.Fatalf("%s: %d layers (%v), want 1", lay, len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
