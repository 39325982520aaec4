package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PublishOptions are the inputs of Publish.
type PublishOptions struct {
	UKI       string // the signed UKI file
	Modules   string // its modules image file ("" when the UKI names none)
	RootImage string // a root image reference to publish with it ("" for none)
	// Created is the org.opencontainers.image.created annotation (RFC
	// 3339); "" leaves it out, so the same inputs give the same digest.
	Created  string
	Registry RegistryOptions
}

// Publish pushes a UKI and its modules image as one InitOS boot artifact
// to ref: a registry reference (REPO:TAG, or REPO@DIGEST to check), or
// oci:DIR for an OCI image layout (created if missing). It checks first
// that the modules image matches the root hash in the UKI's signed
// config, so that a mismatched pair is never published.
func Publish(ctx context.Context, ref string, o PublishOptions) (*PublishInfo, error) {
	img, info, err := buildArtifact(o)
	if err != nil {
		return nil, err
	}
	if dir, ok := strings.CutPrefix(ref, "oci:"); ok {
		err = publishLayout(dir, img, info)
	} else {
		err = publishRegistry(ctx, ref, img, info, o.Registry)
	}
	if err != nil {
		return nil, err
	}
	return info, nil
}

// buildArtifact checks the files and makes the artifact image.
func buildArtifact(o PublishOptions) (v1.Image, *PublishInfo, error) {
	data, err := readBounded(o.UKI, MaxUKISize)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: UKI: %w", err)
	}
	u, err := InspectUKI(data, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: %s: %w", o.UKI, err)
	}
	info := &PublishInfo{Kernel: u.Kernel, SecurityVersion: u.Version, BuildID: u.BuildID, RootImage: o.RootImage}
	uki, err := newFileLayer(o.UKI, MediaTypeUKI, UKIPath)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: %w", err)
	}
	img := &artifactImage{layers: map[v1.Hash]*fileLayer{uki.desc.Digest: uki}}
	var mods *v1.Descriptor
	if m := u.Config.ModulesImage; m.RootHash != "" {
		if o.Modules == "" {
			return nil, nil, fmt.Errorf("publish: the UKI's config names the modules image %s (root hash %s): give it with --modules", m.File, m.RootHash)
		}
		l, err := checkedModules(o.Modules, m)
		if err != nil {
			return nil, nil, fmt.Errorf("publish: %w", err)
		}
		img.layers[l.desc.Digest], mods, info.ModulesRootHash = l, &l.desc, m.RootHash
	} else if o.Modules != "" {
		return nil, nil, errors.New("publish: --modules given, but the UKI's config names no modules image")
	}
	if img.manifest, err = buildManifest(&uki.desc, mods, info.annotations(o.Created)); err != nil {
		return nil, nil, fmt.Errorf("publish: %w", err)
	}
	for _, l := range img.layers {
		info.Bytes += l.desc.Size
	}
	im, err := partial.CompressedToImage(img)
	return im, info, err
}

// checkedModules verifies the modules image against the config and makes
// its layer.
func checkedModules(p string, m ModulesImage) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := VerifyModules(f, m); err != nil {
		return nil, err
	}
	return newFileLayer(p, MediaTypeModules, m.File)
}

func publishRegistry(ctx context.Context, ref string, img v1.Image, info *PublishInfo, o RegistryOptions) error {
	r, err := name.ParseReference(ref, o.nameOptions()...)
	if err != nil {
		return fmt.Errorf("publish: reference %q: %w", ref, err)
	}
	if err := remote.Write(r, img, o.remoteOptions(ctx)...); err != nil {
		return fmt.Errorf("publish: push %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if dr, ok := r.(name.Digest); ok && dr.DigestStr() != d.String() {
		return fmt.Errorf("publish: %s was given, the artifact's digest is %s", ref, d)
	}
	info.Ref, info.Digest, info.Pinned = r.String(), d.String(), r.Context().Digest(d.String()).String()
	return nil
}

func publishLayout(dir string, img v1.Image, info *PublishInfo) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("publish: OCI layout %s: %w", dir, err)
		}
	}
	if err := p.AppendImage(img); err != nil {
		return fmt.Errorf("publish: OCI layout %s: %w", dir, err)
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	info.Ref, info.Digest, info.Pinned = "oci:"+dir, d.String(), "oci:"+dir+"@"+d.String()
	return nil
}

// artifactImage is the boot artifact as go-containerregistry's
// partial.CompressedImageCore.
type artifactImage struct {
	manifest []byte
	layers   map[v1.Hash]*fileLayer
}

func (a *artifactImage) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a *artifactImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifactImage) RawManifest() ([]byte, error)        { return a.manifest, nil }

// LayerByDigest implements partial.CompressedImageCore.
func (a *artifactImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	if c, _, _ := v1.SHA256(strings.NewReader(string(emptyConfig))); h == c {
		return &bytesLayer{b: emptyConfig, h: c, mt: MediaTypeEmpty}, nil
	}
	return nil, fmt.Errorf("blob %s is not in the artifact", h)
}

// fileLayer is a file as a blob: its digest computed once.
type fileLayer struct {
	path string
	desc v1.Descriptor
}

func newFileLayer(p string, mt types.MediaType, espPath string) (*fileLayer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", p, err)
	}
	d := v1.Descriptor{MediaType: mt, Size: n, Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))},
		Annotations: layerAnnotations(espPath)}
	return &fileLayer{path: p, desc: d}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// bytesLayer is a small blob held in memory (the empty config).
type bytesLayer struct {
	b  []byte
	h  v1.Hash
	mt types.MediaType
}

func (l *bytesLayer) Digest() (v1.Hash, error)            { return l.h, nil }
func (l *bytesLayer) Size() (int64, error)                { return int64(len(l.b)), nil }
func (l *bytesLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *bytesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(l.b))), nil
}

// readBounded reads a file of at most max bytes.
func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, max)
	}
	return b, nil
}
