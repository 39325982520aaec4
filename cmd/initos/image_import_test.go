package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/btrfsioctl/btrfstest"
)

func TestImageImportCLI(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=imported\n"), 0o644)
	lay := filepath.Join(t.TempDir(), "layout")

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	var res importJSON
	out := mustRun(t, "image", "import", root, "oci:"+lay+":v1", "--json", "--compress", "zstd")
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Tag != "v1" || res.Entries != 2 || !strings.HasSuffix(res.LayerMT, "tar+zstd") {
		t.Errorf("image import --json = %s (%v), want tag v1, 2 entries, a zstd layer", out, err)
	}
	again := mustRun(t, "image", "import", root, "oci:"+lay, "--tag", "v1", "--json", "--compress", "zstd")
	if again != out {
		t.Errorf("a second import printed %s, want the same image as %s", again, out)
	}
	if out := mustRun(t, "image", "import", root, "oci:"+lay); !strings.HasPrefix(out, "oci:"+lay+":latest sha256:") {
		t.Errorf("image import = %q, want the layout, tag latest and digest", out)
	}
	cfg, err := os.ReadFile(filepath.Join(lay, "blobs", strings.Replace(res.Config, ":", "/", 1)))
	if err != nil || !strings.Contains(string(cfg), `"created":"2023-11-14T22:13:20Z"`) {
		t.Errorf("config of the import = %s, %v, want created at SOURCE_DATE_EPOCH", cfg, err)
	}
	mnt := btrfstest.Mount(t, 256)
	store := filepath.Join(mnt, "images")
	mustRun(t, "image", "pull", "oci:"+lay+":v1", "--store", store)
	if out := mustRun(t, "image", "list", "--store", store); !strings.Contains(out, "\tv1\n") {
		t.Errorf("image list after pulling the import = %q, want v1", out)
	}

	for _, tt := range []struct {
		code int
		want string
		args []string
	}{
		{2, `destination "layout": want oci:DIR[:TAG]`, []string{"image", "import", root, "layout"}},
		{2, "--tag v2 and the destination's tag v1 differ", []string{"image", "import", root, "oci:" + lay + ":v1", "--tag", "v2"}},
		{2, `--compress: unknown compression "lz4"`, []string{"image", "import", root, "oci:" + lay, "--compress", "lz4"}},
		{1, "no such file or directory", []string{"image", "import", filepath.Join(root, "nope"), "oci:" + lay}},
	} {
		wantCLIError(t, tt.code, tt.want, tt.args...)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	wantCLIError(t, 1, `parse SOURCE_DATE_EPOCH "yesterday"`, "image", "import", root, "oci:"+lay)
}

// stallingRegistry serves a registry whose layer blob stops halfway until
// the request is canceled; started is closed when that happens.
func stallingRegistry(t *testing.T, layer v1.Hash, started chan struct{}) string {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layer.String()) {
			reg.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		w.Header().Set("Content-Length", rec.Header().Get("Content-Length"))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestImagePullInterrupted: SIGINT (SIGTERM) in the middle of a layer
// stops the pull, leaves the store as it was and exits 130 (143).
func TestImagePullInterrupted(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	big := make([]byte, 8<<20)
	rand.New(rand.NewSource(1)).Read(big)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, "big", big))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, layer)
	digest, _ := layer.Digest()
	for _, sig := range []struct {
		s    syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		started := make(chan struct{})
		host := stallingRegistry(t, digest, started)
		ref, _ := name.ParseReference(host + "/initos/big:1")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		store := filepath.Join(mnt, "store-"+sig.s.String())
		mustRun(t, "image", "pull", "oci:"+imageLayout(t), "--store", store) // something already there
		before := mustRun(t, "image", "list", "--store", store)

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		done := make(chan error, 1)
		go func() {
			var stdout, stderr bytes.Buffer
			done <- run(ctx, []string{"image", "pull", ref.String(), "--store", store}, &stdout, &stderr)
		}()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("pull ended before the layer was served: %v", err)
		}
		syscall.Kill(os.Getpid(), sig.s)
		var err error
		select {
		case err = <-done:
		case <-time.After(time.Minute):
			t.Fatalf("pull did not stop within a minute of %v", sig.s)
		}
		stop()
		if code := exitCode(err, io.Discard); code != sig.code || !strings.Contains(err.Error(), "the store is as it was") {
			t.Errorf("pull interrupted by %v = %v (exit %d), want exit %d", sig.s, err, code, sig.code)
		}
		if after := mustRun(t, "image", "list", "--store", store); after != before {
			t.Errorf("image list after the interrupted pull = %q, want %q", after, before)
		}
		for _, d := range []string{"", "layers", "images"} {
			ents, _ := os.ReadDir(filepath.Join(store, d))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".tmp-") {
					t.Errorf("interrupted pull left %s", filepath.Join(d, e.Name()))
				}
			}
			if d == "layers" && len(ents) != 1 {
				t.Errorf("interrupted pull: layers/ holds %d entries, want the 1 from before", len(ents))
			}
		}
	}
}

// tarOf is a tar stream of one regular file.
func tarOf(t *testing.T, name string, body []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	return buf.Bytes()
}
