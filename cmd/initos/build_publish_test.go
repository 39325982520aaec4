package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"initos/update"
)

// TestBuildPublish: `initos build --publish` pushes the UKI and the
// modules image it just wrote, as the A/B boot artifact, to
// go-containerregistry's in-process registry and to an OCI layout; a
// host's source (update.OpenSource) finds the same files in both.
func TestBuildPublish(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	args, out := buildCLIInputs(t)
	stdout := mustRun(t, append(args, "--build-id", "demo 2", "--security-version", "2", "--json", "--publish", reg+"/initos/boot:2")...)
	var got struct {
		UKI       struct{ File string }
		Published update.PublishInfo
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("initos build --publish --json: %v\n%s", err, stdout)
	}
	p := got.Published
	if got.UKI.File != "initos.efi" || p.BuildID != "demo 2" || p.SecurityVersion != 2 || !strings.HasPrefix(p.Pinned, reg+"/initos/boot@sha256:") {
		t.Fatalf("initos build --publish --json = uki %q, published %+v; want initos.efi, build \"demo 2\", version 2, pinned in %s", got.UKI.File, p, reg)
	}
	ref, err := name.ParseReference(p.Pinned)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatalf("remote.Get(%s): %v", p.Pinned, err)
	}
	var man struct {
		ArtifactType string `json:"artifactType"`
		Layers       []struct {
			Size        int64
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(desc.Manifest, &man); err != nil {
		t.Fatal(err)
	}
	if man.ArtifactType != update.ArtifactType || len(man.Layers) != 2 {
		t.Fatalf("published manifest: artifactType %q, %d layers; want %q and 2", man.ArtifactType, len(man.Layers), update.ArtifactType)
	}
	for _, l := range man.Layers {
		file := filepath.Join(out, filepath.Base(l.Annotations[update.AnnotationESPPath]))
		if fi, err := os.Stat(file); err != nil || fi.Size() != l.Size {
			t.Errorf("layer %v: size %d; the build's %s: %v", l.Annotations, l.Size, file, err)
		}
	}

	// The same build published to an OCI layout, in text: the pinned
	// reference on the last line.
	layout := filepath.Join(t.TempDir(), "oci")
	args, _ = buildCLIInputs(t)
	stdout = mustRun(t, append(args, "--publish", "oci:"+layout)...)
	if !strings.Contains(stdout, "Published:       \t") || !strings.Contains(stdout, "@sha256:") {
		t.Errorf("initos build --publish oci:DIR: output lacks the pinned reference:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err != nil {
		t.Errorf("initos build --publish oci:%s: %v", layout, err)
	}
}

// TestBuildPublishErrors: a registry that cannot be reached fails the
// verb (exit 1) after the build, naming the reference; the build's
// outputs stay.
func TestBuildPublishErrors(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	reg := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	args, out := buildCLIInputs(t)
	err := mustFail(t, append(args, "--publish", reg+"/initos/boot:1")...)
	if code := exitCode(err, io.Discard); code != 1 || !strings.Contains(err.Error(), "build: publish: ") || !strings.Contains(err.Error(), reg) {
		t.Errorf("initos build --publish (no registry): exit %d, %v; want exit 1 naming %s", code, err, reg)
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
		t.Errorf("the build's outputs: %v", err)
	}
	err = mustFail(t, append(args, "--publish", "nosuch:://x")...)
	if code := exitCode(err, io.Discard); code != 1 || !strings.Contains(err.Error(), "nosuch:://x") {
		t.Errorf("initos build --publish nosuch:://x: exit %d, %v; want exit 1 naming the reference", code, err)
	}
}

// TestBuildModulesImagePath: --modules-image-path is where the UKI's
// config looks for the modules image (an installer's: on its stick).
func TestBuildModulesImagePath(t *testing.T) {
	args, _ := buildCLIInputs(t)
	stdout := mustRun(t, append(args, "--json", "--modules-image-path", "initos/payload/m.sqfs")...)
	var m struct {
		ModulesImage struct {
			ESPPath string `json:"esp_path"`
		} `json:"modules_image"`
	}
	if err := json.Unmarshal([]byte(stdout), &m); err != nil || m.ModulesImage.ESPPath != "initos/payload/m.sqfs" {
		t.Errorf("initos build --modules-image-path initos/payload/m.sqfs: esp_path %q, %v", m.ModulesImage.ESPPath, err)
	}
	for _, bad := range []string{"/initos/m.sqfs", "../m.sqfs", "initos//m.sqfs"} {
		err := mustFail(t, append(args, "--modules-image-path", bad)...)
		if code := exitCode(err, io.Discard); code != 2 || !strings.Contains(err.Error(), "want a clean path relative") {
			t.Errorf("initos build --modules-image-path %q: exit %d, %v; want exit 2", bad, code, err)
		}
	}
}
