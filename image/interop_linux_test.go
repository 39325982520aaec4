package image

import (
	"archive/tar"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"initos/internal/testenv"
)

// writeLayout writes images to a new OCI layout, each named by its tag.
func writeLayout(t *testing.T, dir string, tagged map[string]v1.Image) {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range sortedKeys(tagged) {
		if err := p.AppendImage(tagged[tag], layout.WithAnnotations(map[string]string{refNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// skopeo runs skopeo without a signature policy file.
func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	return testenv.Run(t, "skopeo", append([]string{"--insecure-policy"}, args...)...)
}

// fileImage is a one-layer image holding the file "which" = body.
func fileImage(t *testing.T, body string) v1.Image {
	return imageOf(t, layerOf(t, []ent{{name: "etc/", typ: tar.TypeDir}, {name: "etc/which", body: body}}))
}

// TestLayoutTags pulls from an OCI layout holding several tagged images,
// made by skopeo (copy to oci:DIR:TAG) and umoci (tag), with skopeo's
// oci:DIR:TAG syntax (issue 11: "0 images for linux/amd64").
func TestLayoutTags(t *testing.T) {
	s, _ := newStore(t)
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	writeLayout(t, src, map[string]v1.Image{"a": fileImage(t, "A"), "b": fileImage(t, "B")})
	skopeo(t, "copy", "oci:"+src+":a", "oci:"+dst+":v1")
	skopeo(t, "copy", "oci:"+src+":b", "oci:"+dst+":v2")
	testenv.Run(t, "umoci", "tag", "--image", dst+":v1", "v1-alias")

	for _, tt := range []struct{ tag, want string }{{"v1", "A"}, {"v2", "B"}, {"v1-alias", "A"}} {
		im, _, err := s.Pull(context.Background(), "oci:"+dst+":"+tt.tag, HostPlatform())
		if err != nil {
			t.Errorf("Pull(oci:DIR:%s) = %v", tt.tag, err)
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(im.Path, "etc/which")); string(b) != tt.want {
			t.Errorf("Pull(oci:DIR:%s): etc/which = %q, want %q", tt.tag, b, tt.want)
		}
		if !contains(im.Names, tt.tag) {
			t.Errorf("Pull(oci:DIR:%s).Names = %v, want %s in it", tt.tag, im.Names, tt.tag)
		}
	}
	for _, tt := range []struct{ src, want string }{
		{"oci:" + dst, "choose one with oci:DIR:TAG (tags: v1, v1-alias, v2)"},
		{"oci:" + dst + ":v3", `no image tagged "v3" (tags: v1, v1-alias, v2)`},
	} {
		_, _, err := s.Pull(context.Background(), tt.src, HostPlatform())
		if !errors.Is(err, ErrNoMatch) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Pull(%s) = %v, want ErrNoMatch saying %q", tt.src, err, tt.want)
		}
	}
	// One image needs no tag.
	one := filepath.Join(t.TempDir(), "one")
	skopeo(t, "copy", "oci:"+src+":b", "oci:"+one+":only")
	if im, _, err := s.Pull(context.Background(), "oci:"+one, HostPlatform()); err != nil || !contains(im.Names, "only") {
		t.Errorf("Pull(oci:DIR with one image) = %v, %v, want the image named only", im.Names, err)
	}
}

// TestDockerArchiveSelect reads docker archives made by skopeo, whatever
// the file is called, with skopeo's FILE:NAME:TAG and FILE:@INDEX
// selectors; skopeo inspect of the same selector is the oracle for which
// image is meant (issue 11).
func TestDockerArchiveSelect(t *testing.T) {
	s, _ := newStore(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	imgA, imgB := fileImage(t, "A"), fileImage(t, "B")
	writeLayout(t, src, map[string]v1.Image{"a": imgA})
	single := filepath.Join(dir, "single.docker") // no .tar suffix
	skopeo(t, "copy", "oci:"+src+":a", "docker-archive:"+single+":initos/a:1")

	multi := filepath.Join(dir, "multi")
	ta, _ := name.NewTag("initos/a:1")
	tb, _ := name.NewTag("initos/b:2")
	if err := tarball.MultiWriteToFile(multi, map[name.Tag]v1.Image{ta: imgA, tb: imgB}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src, want, name string
	}{
		{"docker-archive:" + single, "A", "index.docker.io/initos/a:1"},
		{"docker-archive:" + single + ":initos/a:1", "A", "index.docker.io/initos/a:1"},
		{"docker-archive:" + single + ":@0", "A", "index.docker.io/initos/a:1"},
		{"docker-archive:" + multi + ":initos/b:2", "B", "index.docker.io/initos/b:2"},
		{"docker-archive:" + multi + ":docker.io/initos/a:1", "A", "index.docker.io/initos/a:1"},
		{"docker-archive:" + multi + ":@0", "", ""},
		{"docker-archive:" + multi + ":@1", "", ""},
	}
	for _, tt := range tests {
		im, _, err := s.Pull(context.Background(), tt.src, HostPlatform())
		if err != nil {
			t.Errorf("Pull(%s) = %v", tt.src, err)
			continue
		}
		// skopeo says which config the selector means.
		cfg := skopeo(t, "inspect", "--config", "--raw", tt.src)
		if want := "sha256:" + sha256hex(string(cfg)); im.Config != want {
			t.Errorf("Pull(%s).Config = %s, skopeo inspect says %s", tt.src, im.Config, want)
		}
		if tt.want != "" {
			if b, _ := os.ReadFile(filepath.Join(im.Path, "etc/which")); string(b) != tt.want {
				t.Errorf("Pull(%s): etc/which = %q, want %q", tt.src, b, tt.want)
			}
		}
		if tt.name != "" && !contains(im.Names, tt.name) {
			t.Errorf("Pull(%s).Names = %v, want %s in it", tt.src, im.Names, tt.name)
		}
	}
	for _, tt := range []struct{ src, want string }{
		{"docker-archive:" + multi, "holds 2 images; choose one with docker-archive:FILE:NAME:TAG or docker-archive:FILE:@INDEX"},
		{"docker-archive:" + multi + ":@2", "no image @2: the archive holds 2"},
		{"docker-archive:" + multi + ":initos/c:3", "no image tagged index.docker.io/initos/c:3"},
		{"docker-archive:" + single + ":initos/a", "no image tagged index.docker.io/initos/a:latest"},
		{"docker-archive:" + multi + ":@x", `invalid image index "@x"`},
		{"docker-archive:" + multi + ":initos/a@sha256:" + strings.Repeat("0", 64), "not by digest"},
		{"docker-archive:" + filepath.Join(dir, "missing"), "no such file"},
	} {
		_, _, err := s.Pull(context.Background(), tt.src, HostPlatform())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Pull(%s) = %v, want an error saying %q", tt.src, err, tt.want)
		}
	}
}

// dirMtimes returns the mtime of every directory below root.
func dirMtimes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == root {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano)
		return nil
	})
	return out
}

// mtimeImage: a lower layer's directories gain and lose entries in an
// upper layer that does not list them.
func mtimeImage(t *testing.T) v1.Image {
	return imageOf(t,
		layerOf(t, []ent{
			{name: "etc/", typ: tar.TypeDir}, {name: "etc/a", body: "a"},
			{name: "usr/", typ: tar.TypeDir}, {name: "usr/lib/", typ: tar.TypeDir}, {name: "usr/lib/x", body: "x"},
			{name: "var/", typ: tar.TypeDir}, {name: "var/y", body: "y"}, {name: "var/keep", body: "k"},
			{name: "opq/", typ: tar.TypeDir}, {name: "opq/z", body: "z"},
		}),
		layerOf(t, []ent{
			{name: "etc/b", body: "b"}, {name: "etc/sub/", typ: tar.TypeDir}, {name: "etc/sub/c", body: "c"},
			{name: "usr/lib/.wh.x"}, {name: "var/.wh.y"},
			{name: "opq/", typ: tar.TypeDir}, {name: "opq/.wh..wh..opq"}, {name: "opq/n", body: "n"},
			{name: "new/", typ: tar.TypeDir}, {name: "new/f", body: "f"},
		}))
}

// TestDirMtimesMatchUmoci: directories keep their recorded mtimes when a
// later layer changes their entries, as umoci unpack does, and two
// unpacks of one image are identical (issue 11).
func TestDirMtimesMatchUmoci(t *testing.T) {
	s, mnt := newStore(t)
	img := mtimeImage(t)
	lay := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, lay, map[string]v1.Image{"t": img})
	bundle := filepath.Join(mnt, "bundle")
	testenv.Run(t, "umoci", "unpack", "--image", lay+":t", bundle)
	want := filepath.Join(bundle, "rootfs")

	im, _, err := s.Install(context.Background(), img, "mtime:1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dirMtimes(t, want), dirMtimes(t, im.Path)); diff != "" {
		t.Errorf("directory mtimes differ from umoci unpack (-umoci +initos):\n%s", diff)
	}
	compareTrees(t, want, im.Path)

	time.Sleep(20 * time.Millisecond)
	s2, err := Open(filepath.Join(mnt, "again"))
	if err != nil {
		t.Fatal(err)
	}
	im2, _, err := s2.Install(context.Background(), img, "mtime:1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dirMtimes(t, im.Path), dirMtimes(t, im2.Path)); diff != "" {
		t.Errorf("two unpacks of one image differ in directory mtimes (-first +second):\n%s", diff)
	}
	var a, b unix.Stat_t
	unix.Stat(im.Path, &a)
	unix.Stat(im2.Path, &b)
	if a.Mtim != b.Mtim {
		t.Errorf("two unpacks differ in the root's mtime: %v, %v", a.Mtim, b.Mtim)
	}
}

// TestSparseLikeTar: GNU and PAX sparse members get their holes back, as
// GNU tar -x gives them, and long runs of zeros in an ordinary member
// become holes (issue 11).
func TestSparseLikeTar(t *testing.T) {
	tarTool := testenv.Tool(t, "tar")
	s, mnt := newStore(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	data := strings.Repeat("data", 25000) // 100 kB
	sparse := filepath.Join(src, "sparse")
	os.WriteFile(sparse, []byte(data), 0o644)
	os.Truncate(sparse, 64<<20)
	f, _ := os.OpenFile(sparse, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(data)
	f.Close()
	dense := filepath.Join(src, "dense") // zeros written out
	os.WriteFile(dense, []byte(data+strings.Repeat("\x00", 16<<20)+data), 0o644)

	for _, format := range []string{"gnu", "posix", "plain"} {
		t.Run(format, func(t *testing.T) {
			layerTar := filepath.Join(t.TempDir(), "layer.tar")
			args := []string{"-c", "-f", layerTar, "-C", src, "--format=" + format, "-S", "."}
			if format == "plain" {
				args = []string{"-c", "-f", layerTar, "-C", src, "."}
			}
			if out, err := exec.Command(tarTool, args...).CombinedOutput(); err != nil {
				t.Fatalf("tar %v: %v\n%s", args, err, out)
			}
			l, err := tarball.LayerFromFile(layerTar)
			if err != nil {
				t.Fatal(err)
			}
			im, _, err := s.Install(context.Background(), imageOf(t, l), "sparse:"+format)
			if err != nil {
				t.Fatal(err)
			}
			oracle := filepath.Join(mnt, "tar-"+format)
			os.Mkdir(oracle, 0o755)
			if out, err := exec.Command(tarTool, "-x", "-f", layerTar, "-C", oracle).CombinedOutput(); err != nil {
				t.Fatalf("tar -x: %v\n%s", err, out)
			}
			for _, n := range []string{"sparse", "dense"} {
				ours, theirs := blocksOf(t, filepath.Join(im.Path, n)), blocksOf(t, filepath.Join(oracle, n))
				if !sameFile(t, filepath.Join(im.Path, n), filepath.Join(oracle, n)) {
					t.Errorf("%s: content differs from tar -x", n)
				}
				if ours > theirs {
					t.Errorf("%s (%s member): %d KiB allocated, tar -x allocates %d KiB", n, format, ours/2, theirs/2)
				}
				if ours*512 > 1<<20 {
					t.Errorf("%s (%s member): %d KiB allocated for 200 kB of data, want holes", n, format, ours/2)
				}
			}
		})
	}
}

func blocksOf(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}
