package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestBuildErrors(t *testing.T) {
	k := string(fakeKernel(t))
	mods := func(rel string) []ent {
		return []ent{file("usr/lib/modules/"+rel+"/modules.dep", "kernel/a.ko:\n"), file("usr/lib/modules/"+rel+"/kernel/a.ko", "a")}
	}
	tests := []struct {
		name   string
		layers [][]ent
		edit   func(o *Options)
		want   string
	}{
		{"no modules", [][]ent{{file("boot/vmlinuz-1.0", k)}}, nil,
			"no kernel modules in the image (/usr/lib/modules/<release> or /lib/modules/<release>): is it a host image with a kernel package?"},
		{"no modules.dep", [][]ent{{file("boot/vmlinuz-1.0", k), file("lib/modules/1.0/kernel/a.ko", "a")}}, nil,
			"kernel 1.0: no modules.dep in the image's module directory (depmod did not run)"},
		{"no kernel", [][]ent{mods("1.0")}, nil,
			"no kernel image for 1.0 in the image (looked for /boot/vmlinuz-1.0 and /usr/lib/modules/1.0/vmlinuz)"},
		{"kernel deleted", [][]ent{append(mods("1.0"), file("boot/vmlinuz-1.0", k)), {file("boot/.wh.vmlinuz-1.0", "")}}, nil,
			"no kernel image for 1.0"},
		{"not PE", [][]ent{append(mods("1.0"), file("boot/vmlinuz-1.0", "not a kernel"))}, nil,
			"kernel /boot/vmlinuz-1.0: not an EFI (PE) image"},
		{"hard link out", [][]ent{append(mods("1.0"), file("boot/vmlinuz-1.0", k), file("usr/bin/x", "x"), hardlink("usr/lib/modules/1.0/x", "usr/bin/x"))}, nil,
			"hard link to usr/bin/x, outside the modules tree"},
		{"dotdot", [][]ent{append(mods("1.0"), file("../etc/x", "x"))}, nil,
			`tar entry "../etc/x": path leaves the root`},
		{"kernel 9.9", [][]ent{append(mods("1.0"), file("boot/vmlinuz-1.0", k))}, func(o *Options) { o.Kernel = "9.9" },
			"no modules for kernel 9.9 in the image"},
		{"unknown module", [][]ent{append(mods("1.0"), file("boot/vmlinuz-1.0", k))}, func(o *Options) { o.Modules = []string{"nosuch"} },
			"initrd: kernel 1.0: "},
		{"no init", [][]ent{mods("1.0")}, func(o *Options) { o.Init = "/nonexistent/initos-init" },
			"build: initos-init: open /nonexistent/initos-init"},
		{"no stub", [][]ent{mods("1.0")}, func(o *Options) { o.Stub = "/nonexistent/stub" },
			"build: systemd-stub for amd64 (package systemd-boot-efi, or --stub)"},
		{"no image", nil, func(o *Options) { o.Source = "oci:/nonexistent" },
			"build: host image: "},
		{"cert without key", [][]ent{mods("1.0")}, func(o *Options) { o.SigningKey = nil },
			"build: a Secure Boot signing key needs its certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "oci:/nonexistent"
			if tc.layers != nil {
				src = writeImage(t, tc.layers...)
			}
			opts := options(t, src)
			if tc.edit != nil {
				tc.edit(&opts)
			}
			_, err := Build(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build() = %v, want an error containing %q", err, tc.want)
			}
			if out := readOut(t, opts.OutDir); len(out) != 0 {
				t.Errorf("Build() failed and left %d files in OUT", len(out))
			}
		})
	}
}

// blobPath returns the path of the first layer's blob in an oci: source.
func blobPath(t *testing.T, src string) string {
	dir := strings.TrimSuffix(strings.TrimPrefix(src, "oci:"), ":host")
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ix.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

func TestBuildTamperedLayer(t *testing.T) {
	layers := hostLayers(t)
	src := writeImage(t, layers...)
	// The same layer with one module's bytes changed, a valid gzip tar.
	layers[0] = append(layers[0], file(m10+"kernel/fs/fat.ko", "evil"))
	rc, err := layerOf(t, layers[0]).Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := buf.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	tarBytes := bytes.Clone(buf.Bytes())
	buf.Reset()
	zw.Write(tarBytes)
	zw.Close()
	if err := os.WriteFile(blobPath(t, src), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := options(t, src)
	_, err = Build(context.Background(), opts)
	if want := "the layer is corrupt or was tampered with"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "layer 0 (sha256:") {
		t.Fatalf("Build(tampered layer) = %v, want an error containing %q", err, want)
	}
	if out := readOut(t, opts.OutDir); len(out) != 0 {
		t.Errorf("Build() failed and left %d files in OUT", len(out))
	}
}

func TestBuildCancelled(t *testing.T) {
	src := writeImage(t, hostLayers(t)...)
	opts := options(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Fatalf("Build(cancelled) = %v, want context.Canceled", err)
	}
	if out := readOut(t, opts.OutDir); len(out) != 0 {
		t.Errorf("Build() was cancelled and left %d files in OUT", len(out))
	}
}
