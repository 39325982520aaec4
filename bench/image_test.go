package bench

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"initos/btrfsioctl"
	"initos/btrfsioctl/btrfstest"
	"initos/image"
	"initos/internal/testenv"
)

const (
	imageBenchFiles = 50000     // entries in the benchmark image, at most
	imageBenchBytes = 500 << 20 // bytes of file content, at most
	imageBenchParts = 5         // layers of the multi-layer image
)

// BenchmarkImageUnpack unpacks a realistic image (~500 MB, ~50k entries
// from /usr/share and /usr/lib, one uncompressed layer) into a btrfs
// subvolume with image.Store.Install, and extracts the same tar with GNU
// `tar -x` into the same filesystem, in the same iteration; both end with
// a filesystem sync. It reports files/s and MB/s for both and
// x_tar = tar time / initos time (goal >= 1), from the fastest iteration
// of each (use -benchtime 3x on a busy machine). The update sub-benchmark
// installs a second version of a 5-layer image whose last layer changed
// and reports its time (update-ms). Run with -benchtime 1x on a shared
// machine.
func BenchmarkImageUnpack(b *testing.B) {
	testenv.RequireRoot(b)
	tarTool := testenv.Tool(b, "tar")
	dir := b.TempDir()
	files, bytes := imageBenchBuild(b, dir)
	mnt := btrfstest.Mount(b, 4096)
	flat := imageBenchLayer(b, filepath.Join(dir, "flat.tar"))
	img, err := mutate.AppendLayers(empty.Image, flat)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("initos-vs-tar", func(b *testing.B) {
		b.SetBytes(bytes)
		b.ReportAllocs()
		ours, theirs := time.Duration(1<<62), time.Duration(1<<62)
		for b.Loop() {
			store := filepath.Join(mnt, "store")
			start := time.Now()
			s, err := image.Open(store)
			if err != nil {
				b.Fatal(err)
			}
			s.Limits.Workers = imageBenchWorkers()
			if _, _, err := s.Install(context.Background(), img); err != nil {
				b.Fatal(err)
			}
			ours = min(ours, time.Since(start))

			out := filepath.Join(mnt, "tar-out")
			os.MkdirAll(out, 0o755)
			start = time.Now()
			cmd := exec.Command(tarTool, "-x", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", out, "-f", filepath.Join(dir, "flat.tar"))
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tar -x: %v\n%s", err, o)
			}
			if err := btrfsioctl.Sync(out); err != nil {
				b.Fatal(err)
			}
			theirs = min(theirs, time.Since(start))

			b.StopTimer()
			imageBenchClean(b, store, out)
			b.StartTimer()
		}
		b.Logf("image: %d entries, %d MB of content; fastest initos %v, tar %v", files, bytes/1e6, ours, theirs)
		o, t := ours.Seconds(), theirs.Seconds()
		b.ReportMetric(float64(files)/o, "files/s")
		b.ReportMetric(float64(bytes)/o/1e6, "MB/s")
		b.ReportMetric(float64(files)/t, "tar-files/s")
		b.ReportMetric(float64(bytes)/t/1e6, "tar-MB/s")
		b.ReportMetric(t/o, "x_tar")
	})

	b.Run("update-one-layer", func(b *testing.B) {
		var parts []v1.Layer
		for i := range imageBenchParts {
			parts = append(parts, imageBenchLayer(b, filepath.Join(dir, "part"+string(rune('0'+i))+".tar")))
		}
		v1img, _ := mutate.AppendLayers(empty.Image, parts...)
		changed := imageBenchLayer(b, filepath.Join(dir, "changed.tar"))
		v2img, _ := mutate.AppendLayers(empty.Image, append(parts[:imageBenchParts-1:imageBenchParts-1], changed)...)
		total := time.Duration(1 << 62)
		for b.Loop() {
			b.StopTimer()
			store := filepath.Join(mnt, "store-update")
			s, err := image.Open(store)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := s.Install(context.Background(), v1img, "app:1"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			_, st, err := s.Install(context.Background(), v2img, "app:2")
			if err != nil {
				b.Fatal(err)
			}
			total = min(total, time.Since(start))
			if st.Layers != 1 {
				b.Fatalf("update unpacked %d layers, want 1", st.Layers)
			}
			b.StopTimer()
			imageBenchClean(b, store, "")
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Milliseconds()), "update-ms")
	})
}

// imageBenchWorkers reads INITOS_BENCH_IMAGE_WORKERS (0: the default).
func imageBenchWorkers() int {
	n, _ := strconv.Atoi(os.Getenv("INITOS_BENCH_IMAGE_WORKERS"))
	return n
}

// imageBenchClean deletes a store's subvolumes and a tar output tree.
func imageBenchClean(b *testing.B, store, out string) {
	b.Helper()
	for _, sub := range []string{"roots", "images", "layers"} {
		ents, _ := os.ReadDir(filepath.Join(store, sub))
		for _, e := range ents {
			if err := btrfsioctl.DeleteRecursive(filepath.Join(store, sub, e.Name())); err != nil {
				b.Fatal(err)
			}
		}
	}
	os.RemoveAll(store)
	if out != "" {
		os.RemoveAll(out)
	}
	btrfsioctl.Sync(filepath.Dir(store))
}

// imageBenchBuild writes flat.tar (every chosen entry of /usr/lib and
// /usr/share, sorted), partN.tar (the same entries split in
// imageBenchParts layers, directories repeated where needed) and
// changed.tar (the last part plus one new file) into dir. It returns the
// number of entries and content bytes of flat.tar.
func imageBenchBuild(b *testing.B, dir string) (int64, int64) {
	b.Helper()
	type item struct {
		rel string
		fi  fs.FileInfo
	}
	var items []item
	var total int64
	for _, root := range []string{"/usr/share", "/usr/lib"} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(items) >= imageBenchFiles || total >= imageBenchBytes {
				return filepath.SkipDir
			}
			fi, err := d.Info()
			if err != nil || !(fi.Mode().IsRegular() || fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0) {
				return nil
			}
			if fi.Mode().IsRegular() {
				if fi.Size() > 4<<20 {
					return nil
				}
				total += fi.Size()
			}
			items = append(items, item{strings.TrimPrefix(p, "/"), fi})
			return nil
		})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	write := func(name string, sel []item, extra bool) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		tw := tar.NewWriter(bw)
		for _, it := range sel {
			imageBenchAdd(b, tw, it.rel, it.fi)
		}
		if extra {
			body := []byte("version 2\n")
			tw.WriteHeader(&tar.Header{Name: "usr/share/initos-version", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)})
			tw.Write(body)
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	write("flat.tar", items, false)
	per := (len(items) + imageBenchParts - 1) / imageBenchParts
	for i := range imageBenchParts {
		sel := items[min(i*per, len(items)):min((i+1)*per, len(items))]
		write("part"+string(rune('0'+i))+".tar", sel, false)
		if i == imageBenchParts-1 {
			write("changed.tar", sel, true)
		}
	}
	return int64(len(items)), total
}

func imageBenchAdd(b *testing.B, tw *tar.Writer, rel string, fi fs.FileInfo) {
	b.Helper()
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		link, _ = os.Readlink("/" + rel)
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		b.Fatal(err)
	}
	h.Name = rel
	if fi.IsDir() {
		h.Name += "/"
	}
	h.Uname, h.Gname = "", ""
	h.Format = tar.FormatPAX
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(h); err != nil {
		b.Fatal(err)
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open("/" + rel)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

// imageBenchFileLayer is an uncompressed layer backed by a tar file, so
// both unpackers read the same bytes from the page cache.
type imageBenchFileLayer struct {
	path string
	hash v1.Hash
	size int64
}

func imageBenchLayer(b *testing.B, path string) v1.Layer {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		b.Fatal(err)
	}
	return &imageBenchFileLayer{path, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n}
}

func (l *imageBenchFileLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *imageBenchFileLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *imageBenchFileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *imageBenchFileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *imageBenchFileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *imageBenchFileLayer) MediaType() (types.MediaType, error) {
	return types.OCIUncompressedLayer, nil
}
