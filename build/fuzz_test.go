package build

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"initos/squashfs"
)

// FuzzParseManifest: a manifest.json is parsed strictly, never panics,
// and what parses marshals and parses back the same.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"arch":"amd64","skipped_kernels":[],"files":[]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"extra":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseManifest(out); err != nil {
			t.Fatalf("ParseManifest(Marshal(m)) = %v", err)
		}
	})
}

// FuzzRouteLayer: any tar stream (a hostile layer) routed into a modules
// image fails or succeeds, without a panic.
func FuzzRouteLayer(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{{"usr/lib/modules/1.0/modules.dep", "a.ko:\n"}, {"usr/lib/modules/1.0/.wh.a.ko", ""}, {"boot/vmlinuz-1.0", "MZ"}} {
		tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(e.body))
	}
	tw.Close()
	f.Add(buf.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := os.Create(filepath.Join(dir, "img"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		w, err := squashfs.NewWriter(context.Background(), out, squashfs.Options{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		r := newRouter(w, "", testTime)
		if err := r.layer(tar.NewReader(bytes.NewReader(b))); err != nil {
			w.Abort()
			return
		}
		if rel, err := r.chooseRelease(); err == nil {
			r.kernel(rel)
		}
		w.Finish()
	})
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"6.1.0-10-amd64", "6.1.0-9-amd64", 1},
		{"6.1.0-9-amd64", "6.1.0-10-amd64", -1},
		{"6.1.0-9-amd64", "6.1.0-9-amd64", 0},
		{"6.10.0", "6.9.0", 1},
		{"6.1.0-9-arm64", "6.1.0-9-amd64", 1},
		{"6.1", "6.1.0", -1},
	}
	for _, tc := range tests {
		if got := compareVersions(tc.a, tc.b); (got > 0) != (tc.want > 0) || (got < 0) != (tc.want < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}
