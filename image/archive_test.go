package image

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// archiveBytes writes images to a `docker save` style tarball in memory.
func archiveBytes(t testing.TB, tagged map[string]v1.Image) []byte {
	t.Helper()
	refs := map[name.Tag]v1.Image{}
	for tag, img := range tagged {
		tg, err := name.NewTag(tag)
		if err != nil {
			t.Fatal(err)
		}
		refs[tg] = img
	}
	var buf bytes.Buffer
	if err := tarball.MultiWrite(refs, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDockerArchiveReader(t *testing.T) {
	img := imageOf(t, layerOf(t, []ent{{name: "f", body: "x"}}), layerOf(t, []ent{{name: "g", body: "y"}}))
	b := archiveBytes(t, map[string]v1.Image{"a:1": img})
	a, err := readDockerArchive(bytes.NewReader(b), int64(len(b)), "test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.image(0)
	if err != nil {
		t.Fatal(err)
	}
	// Same config and layer content as the image written.
	for _, pair := range [][2]func(v1.Image) (v1.Hash, error){{v1.Image.ConfigName, v1.Image.ConfigName}} {
		w, _ := pair[0](img)
		g, _ := pair[1](got)
		if w != g {
			t.Errorf("archive image config = %s, want %s", g, w)
		}
	}
	wl, _ := img.Layers()
	gl, err := got.Layers()
	if err != nil || len(gl) != len(wl) {
		t.Fatalf("archive image layers = %d, %v, want %d", len(gl), err, len(wl))
	}
	for i := range wl {
		wd, _ := wl[i].DiffID()
		gd, err := gl[i].DiffID()
		if err != nil || wd != gd {
			t.Errorf("layer %d diffID = %s, %v, want %s", i, gd, err, wd)
		}
	}
}

// FuzzDockerArchive reads arbitrary bytes as a docker archive: indexing,
// choosing an image and reading its layers must not panic or allocate
// beyond the archive's size and the JSON bound.
func FuzzDockerArchive(f *testing.F) {
	img := imageOf(f, layerOf(f, []ent{{name: "f", body: "x"}}))
	f.Add(archiveBytes(f, map[string]v1.Image{"a:1": img}))
	f.Add(archiveBytes(f, map[string]v1.Image{"a:1": img, "b:2": imageOf(f)}))
	f.Add(tarBytes(f, []ent{{name: "manifest.json", body: `[{"Config":"c","Layers":["l","l"]}]`}, {name: "c", body: "{}"}, {name: "l", typ: '2', link: "l"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := readDockerArchive(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			return
		}
		for _, sel := range []string{"", "@0", "@1", "a:1"} {
			i, _, err := a.choose(sel)
			if err != nil {
				continue
			}
			img, err := a.image(i)
			if err != nil {
				continue
			}
			layers, err := img.Layers()
			if err != nil {
				continue
			}
			for _, l := range layers {
				if rc, err := l.Compressed(); err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				}
			}
		}
	})
}
