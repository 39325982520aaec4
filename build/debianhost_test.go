package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"initos/image"
	"initos/images/imagestest"
	"initos/internal/testenv"
	"initos/modimage"
	"initos/squashfs"
)

// TestBuildDebianhost builds the real debianhost image twice (1 worker
// and every core): the outputs are identical, every module and firmware
// file of the image is in the modules image, and veritysetup verifies it.
func TestBuildDebianhost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the debianhost image")
	}
	veritysetup := testenv.Tool(t, "veritysetup")
	src := imagestest.Build(t, "debianhost")
	var first map[string][]byte
	var m *Manifest
	for _, workers := range []int{0, 1} {
		opts := options(t, src)
		opts.Workers = workers
		var err error
		if m, err = Build(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		out := readOut(t, opts.OutDir)
		if first == nil {
			first = out
			img := filepath.Join(opts.OutDir, m.ModulesImage.File)
			testenv.Run(t, veritysetup, "verify", "--hash-offset", strconv.FormatInt(m.ModulesImage.HashOffset, 10), img, img, m.ModulesImage.RootHash)
			continue
		}
		for name, b := range first {
			if !bytes.Equal(out[name], b) {
				t.Errorf("Build(debianhost, workers=%d): %s differs from the first build", workers, name)
			}
		}
	}
	want := imageTrees(t, src, m.Kernel.Release)
	r, err := squashfs.NewReader(bytes.NewReader(first[m.ModulesImage.File]), m.ModulesImage.DataSize)
	if err != nil {
		t.Fatal(err)
	}
	for p, size := range want {
		fi, err := r.Lstat(p)
		if err != nil || (fi.Mode().IsRegular() && fi.Size() != size) {
			t.Errorf("modules image: %s: %v, size %v, want %d bytes", p, err, fi, size)
		}
	}
	if len(want) < 1000 || m.ModulesImage.Modules < 1000 {
		t.Errorf("debianhost: %d files in its module and firmware trees, %d modules in the image: want more than 1000", len(want), m.ModulesImage.Modules)
	}
	t.Logf("debianhost: %s, %d modules, %d firmware files, modules image %d bytes", m.Kernel.Release, m.ModulesImage.Modules, m.ModulesImage.Firmware, len(first[m.ModulesImage.File]))
}

// imageTrees lists the regular files and symlinks of the image's module
// directory for rel and firmware tree, as modules image paths -> size.
func imageTrees(t *testing.T, src, rel string) map[string]int64 {
	img, _, err := image.Resolve(context.Background(), src, image.HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeSymlink {
				continue
			}
			p := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
			for _, tr := range trees {
				rest, ok := strings.CutPrefix(p, tr.from+"/")
				switch {
				case !ok:
				case tr.to == modimage.FirmwareDir:
					out[modimage.FirmwareDir+"/"+rest] = h.Size
				case strings.HasPrefix(rest, rel+"/") && !isKernelPath(p) && rest != rel+"/build" && rest != rel+"/source":
					out[modimage.ModulesDir+"/"+rest] = h.Size
				}
			}
		}
		rc.Close()
	}
	return out
}
