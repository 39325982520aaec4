package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"initos/internal/updatetest"
)

// testRegistry starts go-containerregistry's in-process registry on
// 127.0.0.1 and returns its host:port.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// publish writes b's files and publishes them to ref.
func publish(t *testing.T, b *build, ref string) *PublishInfo {
	t.Helper()
	d := b.Dir(t)
	info, err := Publish(context.Background(), ref, PublishOptions{UKI: filepath.Join(d, "initos.efi"),
		Modules: filepath.Join(d, filepath.Base(b.Config.ModulesImage.File))})
	if err != nil {
		t.Fatalf("Publish(%s): %v", ref, err)
	}
	return info
}

// TestPublishPull: publish to a registry, then stage from the tag: the
// source is pinned to the manifest digest, and the staged slot verifies.
func TestPublishPull(t *testing.T) {
	db := loadSigner(t, "db")
	reg := testRegistry(t)
	next := newBuild(t, db, 2, "v2")
	info := publish(t, next, reg+"/initos/boot:stable")
	if !strings.HasPrefix(info.Pinned, reg+"/initos/boot@sha256:") || info.SecurityVersion != 2 || info.Kernel != testKernel || info.BuildID != "v2" {
		t.Errorf("Publish = %+v", info)
	}
	if again := publish(t, next, reg+"/initos/boot:again"); again.Digest != info.Digest {
		t.Errorf("publishing the same files twice gave digests %s and %s, want equal (reproducible)", info.Digest, again.Digest)
	}
	checkManifest(t, info.Pinned, next)

	h := newHost(t, db, "a", true)
	h.install(t, "a", newBuild(t, db, 1, "v1"))
	src, err := OpenSource(context.Background(), reg+"/initos/boot:stable", RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.String() != info.Pinned {
		t.Errorf("source = %s, want the pinned %s", src, info.Pinned)
	}
	// The tag moves after the source resolved it: what is staged is still
	// the build resolved.
	publish(t, newBuild(t, db, 3, "v3"), reg+"/initos/boot:stable")
	res, err := Stage(context.Background(), h.System, src, StageOptions{})
	if err != nil {
		t.Fatalf("Stage from the registry: %v", err)
	}
	if res.UKI.BuildID != "v2" || res.Source != info.Pinned {
		t.Errorf("staged build %q from %s, want v2 from %s", res.UKI.BuildID, res.Source, info.Pinned)
	}
	if b, _ := os.ReadFile(joinESP(h.esp["b"], next.Config.ModulesImage.File)); !bytes.Equal(b, next.Modules) {
		t.Errorf("the staged modules image differs from the published one")
	}
}

// checkManifest fetches the manifest and checks the media types and
// annotations a registry user sees.
func checkManifest(t *testing.T, ref string, b *build) {
	t.Helper()
	r, _ := name.ParseReference(ref)
	d, err := remote.Get(r)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	json.Unmarshal(d.Manifest, &m)
	if m.ArtifactType != ArtifactType || m.Config.MediaType != MediaTypeEmpty || len(m.Layers) != 2 ||
		m.Layers[0].MediaType != MediaTypeUKI || m.Layers[1].MediaType != MediaTypeModules {
		t.Errorf("manifest: artifactType %q, config %q, layers %v", m.ArtifactType, m.Config.MediaType, m.Layers)
	}
	for k, v := range map[string]string{AnnotationKernel: testKernel, AnnotationSecurityVersion: "2", AnnotationBuildID: b.ID,
		AnnotationModulesRootHash: b.Config.ModulesImage.RootHash} {
		if m.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, m.Annotations[k], v)
		}
	}
	if got := m.Layers[1].Annotations[AnnotationESPPath]; got != b.Config.ModulesImage.File {
		t.Errorf("modules layer ESP path = %q, want %q", got, b.Config.ModulesImage.File)
	}
}

// flipTransport corrupts one byte of every blob download.
type flipTransport struct{}

func (flipTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rsp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet || rsp.StatusCode != 200 {
		return rsp, err
	}
	b, _ := io.ReadAll(rsp.Body)
	rsp.Body.Close()
	if len(b) > 100 {
		b[100] ^= 1
	}
	rsp.Body = io.NopCloser(bytes.NewReader(b))
	return rsp, nil
}

// TestPullTampered: a blob altered in transit is refused, and nothing is
// staged.
func TestPullTampered(t *testing.T) {
	db := loadSigner(t, "db")
	reg := testRegistry(t)
	publish(t, newBuild(t, db, 2, "v2"), reg+"/initos/boot:v2")
	h := newHost(t, db, "a", false)
	src, err := OpenSource(context.Background(), reg+"/initos/boot:v2", RegistryOptions{Transport: flipTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Stage(context.Background(), h.System, src, StageOptions{})
	if err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("Stage of a tampered blob = %v, want a digest mismatch", err)
	}
	if _, err := os.Stat(joinESP(h.esp["b"], UKIPath)); err == nil {
		t.Errorf("a UKI was staged from a tampered blob")
	}
}

// TestPullNotArtifact: an ordinary container image is not a boot artifact.
func TestPullNotArtifact(t *testing.T) {
	reg := testRegistry(t)
	img, _ := random.Image(100, 1)
	r, _ := name.ParseReference(reg + "/app:1")
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	_, err := OpenSource(context.Background(), reg+"/app:1", RegistryOptions{})
	if !errors.Is(err, ErrArtifact) {
		t.Errorf("OpenSource(container image) = %v, want ErrArtifact", err)
	}
	if _, err := OpenSource(context.Background(), reg+"/missing:1", RegistryOptions{}); !errors.Is(err, ErrSource) {
		t.Errorf("OpenSource(missing) = %v, want ErrSource", err)
	}
}

// TestLayout: publish into an OCI image layout, stage from it.
func TestLayout(t *testing.T) {
	db := loadSigner(t, "db")
	dir := filepath.Join(t.TempDir(), "layout")
	publish(t, newBuild(t, db, 1, "v1"), "oci:"+dir)
	info := publish(t, newBuild(t, db, 2, "v2"), "oci:"+dir)
	for _, from := range []string{dir, "oci:" + dir} {
		h := newHost(t, db, "a", false)
		src, err := OpenSource(context.Background(), from, RegistryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(src.String(), info.Digest) {
			t.Errorf("layout source %s, want the newest artifact %s", src, info.Digest)
		}
		res, err := Stage(context.Background(), h.System, src, StageOptions{})
		if err != nil || res.UKI.BuildID != "v2" {
			t.Errorf("Stage from %s = %v, build %v", from, err, res.UKI)
		}
	}
}

func TestPublishRefused(t *testing.T) {
	db := loadSigner(t, "db")
	b := newBuild(t, db, 1, "v1")
	d := b.Dir(t)
	uki, mods := filepath.Join(d, "initos.efi"), filepath.Join(d, filepath.Base(b.Config.ModulesImage.File))
	other := newBuild(t, db, 1, "other").Dir(t)
	out := "oci:" + t.TempDir()
	for _, c := range []struct {
		name string
		o    PublishOptions
		msg  string
	}{
		{"no modules", PublishOptions{UKI: uki}, "give it with --modules"},
		{"other modules", PublishOptions{UKI: uki, Modules: filepath.Join(other, filepath.Base(b.Config.ModulesImage.File))}, "verity superblock: salt"},
		{"no UKI", PublishOptions{UKI: filepath.Join(d, "missing.efi")}, "no such file"},
	} {
		if _, err := Publish(context.Background(), out, c.o); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Publish(%s) = %v, want an error containing %q", c.name, err, c.msg)
		}
	}
	if _, err := Publish(context.Background(), "no way::", PublishOptions{UKI: uki, Modules: mods}); err == nil {
		t.Errorf("Publish to a bad reference succeeded")
	}
}

func FuzzParseArtifact(f *testing.F) {
	u := v1.Descriptor{MediaType: MediaTypeUKI, Size: 3, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}
	m, _ := buildManifest(&u, nil, map[string]string{AnnotationKernel: "6.1"})
	f.Add(m)
	f.Add([]byte(`{"schemaVersion":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseArtifact(b)
		if err == nil && info.uki.MediaType != MediaTypeUKI {
			t.Fatalf("parseArtifact accepted a manifest without a UKI layer")
		}
	})
}

func FuzzInspectUKI(f *testing.F) {
	stub, _ := os.ReadFile(updatetest.Stub())
	f.Add(stub)
	f.Add(makeUKI(f, updatetest.Signer{}, Config{Mode: "boot", Kernel: testKernel}))
	f.Fuzz(func(t *testing.T, b []byte) {
		InspectUKI(b, nil)
	})
}
