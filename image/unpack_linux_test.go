package image

import (
	"archive/tar"
	"bytes"
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"initos/btrfsioctl/btrfstest"
	"initos/internal/testenv"
)

// baseLayer has one of every entry type, owners, modes and xattrs.
func baseLayer(t testing.TB) v1.Layer {
	big := make([]byte, 3<<20+17)
	rand.New(rand.NewSource(1)).Read(big)
	return layerOf(t, []ent{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/tool", body: "#!/bin/sh\necho tool\n", mode: 0o755, xattrs: map[string]string{"security.capability": capability, "user.note": "hi"}},
		{name: "bin/tool2", typ: tar.TypeLink, link: "bin/tool"},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "tool"},
		{name: "bin/suid", body: "s", mode: 0o4755},
		{name: "bin/sgid", body: "g", mode: 0o2711, gid: 50},
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/shadow", body: "root:*:1::::::\n", mode: 0o640, gid: 42},
		{name: "etc/abs", typ: tar.TypeSymlink, link: "/etc/passwd"},
		{name: "home/u/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		{name: "home/u/file", body: "mine", uid: 1000, gid: 1000, mode: 0o600},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "dev/", typ: tar.TypeDir},
		{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		{name: "dev/loop9", typ: tar.TypeBlock, mode: 0o660, major: 7, minor: 9, gid: 6},
		{name: "dev/fifo", typ: tar.TypeFifo, mode: 0o620},
		{name: "usr/lib/", typ: tar.TypeDir},
		{name: "usr/lib/big.bin", body: string(big)},
		{name: "usr/lib/empty", body: ""},
		{name: "usr/lib/" + strings.Repeat("long-name-", 20), body: "pax name"},
		{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"},
		{name: "opq/", typ: tar.TypeDir},
		{name: "opq/old", body: "old"},
		{name: "opq/sub/", typ: tar.TypeDir},
		{name: "opq/sub/deep", body: "deep"},
		{name: "del/", typ: tar.TypeDir},
		{name: "del/x", body: "x"},
		{name: "del/y", body: "y"},
		{name: "gone", body: "gone"},
		{name: "gonedir/", typ: tar.TypeDir},
		{name: "gonedir/f", body: "f"},
		{name: "replaced", body: "file becomes dir"},
		{name: "dirtofile/", typ: tar.TypeDir},
		{name: "dirtofile/child", body: "c"},
		{name: "linktofile", typ: tar.TypeSymlink, link: "etc/passwd"},
		{name: "dirdir/", typ: tar.TypeDir, mode: 0o700},
		{name: "dirdir/keep", body: "k"},
	})
}

// upperLayer whites out, replaces and adds on top of baseLayer.
func upperLayer(t testing.TB) v1.Layer {
	return layerOf(t, []ent{
		{name: ".wh.gone"},
		{name: ".wh.gonedir"},
		{name: "del/.wh.x"},
		{name: "opq/", typ: tar.TypeDir, mode: 0o750},
		{name: "opq/.wh..wh..opq"},
		{name: "opq/new", body: "new in opaque dir"},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n"},
		{name: "etc/new", body: "added", xattrs: map[string]string{"user.layer": "2"}},
		{name: "replaced/", typ: tar.TypeDir},
		{name: "replaced/child", body: "now a dir"},
		{name: "dirtofile", body: "dir became file", mode: 0o600},
		{name: "linktofile", body: "symlink became file"},
		{name: "dirdir/", typ: tar.TypeDir, mode: 0o755, uid: 7},
		{name: "usr/lib/empty", body: "no longer empty", mode: 0o600},
		{name: "bin/tool", body: "#!/bin/sh\necho tool v2\n", mode: 0o755, xattrs: map[string]string{"security.capability": capability}},
		{name: "bin/tool2", typ: tar.TypeLink, link: "bin/tool"},
	})
}

// extractOracle flattens img with mutate.Extract and extracts it with GNU
// tar into dir.
func extractOracle(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	tarPath := testenv.Tool(t, "tar")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tarPath, "-x", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", dir, "-f", "-")
	rc := mutate.Extract(img)
	defer rc.Close()
	cmd.Stdin = rc
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, stderr.String())
	}
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	mnt := btrfstest.Mount(t, 512)
	s, err := Open(filepath.Join(mnt, "images"))
	if err != nil {
		t.Fatal(err)
	}
	return s, mnt
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	w, g := snapshotTree(t, want), snapshotTree(t, got)
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("unpacked tree %s differs from tar -x of the flattened image %s (-tar +got):\n%s", got, want, diff)
	}
}

func TestUnpackMatchesTar(t *testing.T) {
	s, mnt := newStore(t)
	tests := []struct {
		name   string
		layers func(t testing.TB) []v1.Layer
	}{
		{"base", func(t testing.TB) []v1.Layer { return []v1.Layer{baseLayer(t)} }},
		{"base+upper", func(t testing.TB) []v1.Layer { return []v1.Layer{baseLayer(t), upperLayer(t)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := imageOf(t, tt.layers(t)...)
			im, _, err := s.Install(context.Background(), img, "test/"+tt.name+":latest")
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			oracle := filepath.Join(mnt, "oracle-"+tt.name)
			extractOracle(t, img, oracle)
			compareTrees(t, oracle, im.Path)
		})
	}
	// Spot checks the oracle comparison cannot make on its own.
	im, err := s.Get("test/base+upper:latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"gone", "gonedir", "del/x", "opq/old", "opq/sub"} {
		if _, err := os.Lstat(filepath.Join(im.Path, p)); !os.IsNotExist(err) {
			t.Errorf("whited-out %s: Lstat = %v, want not exist", p, err)
		}
	}
	for _, p := range []string{"del/y", "opq/new", "replaced/child"} {
		if _, err := os.Lstat(filepath.Join(im.Path, p)); err != nil {
			t.Errorf("kept %s: %v", p, err)
		}
	}
	if x := xattrsOf(t, filepath.Join(im.Path, "bin/tool")); x["security.capability"] == "" {
		t.Errorf("bin/tool xattrs = %v, want security.capability", x)
	}
}

// TestWhiteoutSameLayer: whiteouts only hide lower layers; an entry made
// by the same layer survives its whiteout (image-spec layer.md).
func TestWhiteoutSameLayer(t *testing.T) {
	s, _ := newStore(t)
	img := imageOf(t,
		layerOf(t, []ent{{name: "d/", typ: tar.TypeDir}, {name: "d/lower", body: "l"}, {name: "f", body: "lower f"}}),
		layerOf(t, []ent{
			{name: "f", body: "upper f"}, {name: ".wh.f"},
			{name: "d/", typ: tar.TypeDir}, {name: "d/upper", body: "u"}, {name: "d/.wh..wh..opq"},
			{name: "missing/.wh.x"}, {name: ".wh.nothing"},
		}))
	im, _, err := s.Install(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	got := snapshotTree(t, im.Path)
	for _, p := range []string{"f", "d", "d/upper"} {
		if _, ok := got[p]; !ok {
			t.Errorf("%s missing after same-layer whiteout", p)
		}
	}
	for _, p := range []string{"d/lower", "missing"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s present, want removed/not created", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(im.Path, "f")); string(b) != "upper f" {
		t.Errorf("f = %q, want %q", b, "upper f")
	}
}
