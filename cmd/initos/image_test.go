package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/btrfsioctl/btrfstest"
	"initos/image"
)

// imageLayout writes a one-layer image holding etc/os-release to an OCI
// layout and returns its directory.
func imageLayout(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := "ID=initos\n"
	for _, err := range []error{
		tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}),
		tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}),
		func() error { _, err := tw.Write([]byte(body)); return err }(),
		tw.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "initos/os:1"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestImageCLI(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	store := filepath.Join(mnt, "images")
	dir := imageLayout(t)

	out := mustRun(t, "image", "pull", "oci:"+dir, "--store", store)
	if !strings.Contains(out, "initos/os:1") || !strings.Contains(out, "unpacked 1 of 1 layers") {
		t.Errorf("image pull = %q, want the name and 1 layer unpacked", out)
	}
	if out := mustRun(t, "image", "pull", "oci:"+dir, "--store", store); !strings.Contains(out, "unpacked 0 of 1") {
		t.Errorf("second image pull = %q, want nothing unpacked", out)
	}
	if out := mustRun(t, "image", "list", "--store", store); !strings.Contains(out, "1 layers\tinitos/os:1") {
		t.Errorf("image list = %q", out)
	}
	out = mustRun(t, "image", "root", "initos/os:1", "--store", store, "--as", "host", "--default")
	root := filepath.Join(store, "roots", "host")
	if !strings.HasPrefix(out, root+"\n") {
		t.Errorf("image root = %q, want %s first", out, root)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err != nil || string(b) != "ID=initos\n" {
		t.Errorf("root etc/os-release = %q, %v", b, err)
	}
	c, err := image.ReadConfigFile(filepath.Join(mnt, image.ConfigName))
	if err != nil || c.Root != "images/roots/host" || !strings.HasPrefix(c.Image, "sha256:") {
		t.Errorf("host-root config = %+v, %v, want root=images/roots/host", c, err)
	}
	mustRun(t, "image", "rm", "initos/os:1", "--store", store)
	if out := mustRun(t, "image", "gc", "--store", store); !strings.Contains(out, "removed layers/sha256-") {
		t.Errorf("image gc = %q, want the layer removed", out)
	}
	if out := mustRun(t, "image", "list", "--store", store); out != "" {
		t.Errorf("image list after rm+gc = %q, want empty", out)
	}
	mustFail(t, "image", "list") // no --store
	bad := filepath.Join(mnt, "bad-store")
	if err := mustFail(t, "image", "pull", "oci:"+dir, "--store", bad, "--platform", "nope"); !errors.Is(err, errUsage) {
		t.Errorf("image pull --platform nope = %v, want a usage error", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("image pull with a bad --platform created the store: %v", err)
	}
}
