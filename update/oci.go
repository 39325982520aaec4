package update

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OCI media types and annotations of InitOS boot artifacts: one image
// manifest (OCI image-spec 1.1, "artifact" usage) with artifactType
// ArtifactType, the empty config, one layer for the UKI and one for the
// modules image, and annotations describing the build.
const (
	ArtifactType     = "application/vnd.initos.boot.v1"
	MediaTypeUKI     = "application/vnd.initos.uki.v1.efi"
	MediaTypeModules = "application/vnd.initos.modules.v1.squashfs-verity"
	MediaTypeEmpty   = "application/vnd.oci.empty.v1+json"

	AnnotationKernel          = "org.initos.kernel.version"
	AnnotationSecurityVersion = "org.initos.security.version"
	AnnotationBuildID         = "org.initos.build.id"
	AnnotationModulesRootHash = "org.initos.modules.root-hash"
	AnnotationRootImage       = "org.initos.root.image"
	AnnotationESPPath         = "org.initos.esp.path" // on each layer: where it goes on the ESP
	AnnotationTitle           = "org.opencontainers.image.title"
	AnnotationCreated         = "org.opencontainers.image.created"
)

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// ErrArtifact reports an OCI manifest that is not an InitOS boot artifact.
var ErrArtifact = errors.New("not an InitOS boot artifact")

// maxManifest bounds a manifest read from a registry or a layout.
const maxManifest = 4 << 20

// manifestInfo is what an upgrade reads from an artifact's manifest.
type manifestInfo struct {
	uki, modules v1.Descriptor
	hasModules   bool
	annotations  map[string]string
}

// parseArtifact checks that raw is an InitOS boot artifact manifest and
// returns its layers.
func parseArtifact(raw []byte) (*manifestInfo, error) {
	if len(raw) > maxManifest {
		return nil, fmt.Errorf("%w: manifest of %d bytes", ErrArtifact, len(raw))
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrArtifact, err)
	}
	switch {
	case m.SchemaVersion != 2:
		return nil, fmt.Errorf("%w: schemaVersion %d", ErrArtifact, m.SchemaVersion)
	case m.MediaType != "" && m.MediaType != types.OCIManifestSchema1:
		return nil, fmt.Errorf("%w: manifest media type %s (an index or a docker manifest?)", ErrArtifact, m.MediaType)
	case m.ArtifactType != ArtifactType && string(m.Config.MediaType) != ArtifactType:
		return nil, fmt.Errorf("%w: artifactType %q, config %q (want %s)", ErrArtifact, m.ArtifactType, m.Config.MediaType, ArtifactType)
	}
	info := &manifestInfo{annotations: m.Annotations}
	var nUKI int
	for _, l := range m.Layers {
		switch l.MediaType {
		case MediaTypeUKI:
			info.uki, nUKI = l, nUKI+1
		case MediaTypeModules:
			if info.hasModules {
				return nil, fmt.Errorf("%w: two modules images", ErrArtifact)
			}
			info.modules, info.hasModules = l, true
		}
	}
	if nUKI != 1 {
		return nil, fmt.Errorf("%w: %d layers of type %s, want 1", ErrArtifact, nUKI, MediaTypeUKI)
	}
	return info, nil
}

// blobOpener opens a blob by digest.
type blobOpener func(ctx context.Context, d v1.Hash) (io.ReadCloser, error)

// artifactSource is a boot artifact in a registry or an OCI layout.
type artifactSource struct {
	name   string // REPO@sha256:... or DIR@sha256:...
	info   *manifestInfo
	open   blobOpener
	closer func() error
}

func (s *artifactSource) String() string { return s.name }
func (s *artifactSource) RootImage() string {
	return s.info.annotations[AnnotationRootImage]
}

func (s *artifactSource) Close() error {
	if s.closer != nil {
		return s.closer()
	}
	return nil
}

func (s *artifactSource) UKI(ctx context.Context) (Artifact, error) {
	return s.artifact(s.info.uki), nil
}

func (s *artifactSource) Modules(ctx context.Context, file string) (Artifact, error) {
	if !s.info.hasModules {
		return Artifact{}, fmt.Errorf("%w: %s has no modules image layer and the UKI needs %s", ErrSource, s.name, file)
	}
	if p := s.info.modules.Annotations[AnnotationESPPath]; p != "" && p != file {
		return Artifact{}, fmt.Errorf("%w: %s's modules image is for %s, the UKI needs %s", ErrSource, s.name, p, file)
	}
	return s.artifact(s.info.modules), nil
}

func (s *artifactSource) artifact(d v1.Descriptor) Artifact {
	return Artifact{
		Name: s.name + " " + d.Digest.String(), Size: d.Size, Digest: d.Digest.String(),
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			rc, err := s.open(ctx, d.Digest)
			if err != nil {
				return nil, fmt.Errorf("%w: blob %s: %w", ErrSource, d.Digest, err)
			}
			return newVerifier(rc, d), nil
		},
	}
}

// verifier checks a blob's size and SHA-256 digest as it is read: a
// mismatch is an error at the end (and a longer blob at once).
type verifier struct {
	rc   io.ReadCloser
	h    hash.Hash
	want v1.Descriptor
	n    int64
}

func newVerifier(rc io.ReadCloser, d v1.Descriptor) *verifier {
	return &verifier{rc: rc, h: sha256.New(), want: d}
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want.Size {
		return n, fmt.Errorf("blob %s: more than its %d bytes", v.want.Digest, v.want.Size)
	}
	if err == io.EOF {
		got := "sha256:" + hex.EncodeToString(v.h.Sum(nil))
		if v.want.Digest.Algorithm != "sha256" || got != v.want.Digest.String() || v.n != v.want.Size {
			return n, fmt.Errorf("blob %s: got %d bytes with digest %s: the blob does not match its descriptor", v.want.Digest, v.n, got)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }

// PublishInfo describes what Publish pushed.
type PublishInfo struct {
	Ref             string `json:"ref"`    // the reference pushed to
	Digest          string `json:"digest"` // the manifest digest
	Pinned          string `json:"pinned"` // REPO@DIGEST, what hosts should pull
	Kernel          string `json:"kernel"`
	SecurityVersion uint64 `json:"security_version"`
	BuildID         string `json:"build_id,omitempty"`
	ModulesRootHash string `json:"modules_root_hash,omitempty"`
	RootImage       string `json:"root_image,omitempty"`
	Bytes           int64  `json:"bytes"`
}

// annotations returns the manifest annotations of a publish.
func (p *PublishInfo) annotations(created string) map[string]string {
	a := map[string]string{
		AnnotationKernel:          p.Kernel,
		AnnotationSecurityVersion: strconv.FormatUint(p.SecurityVersion, 10),
	}
	for k, v := range map[string]string{AnnotationBuildID: p.BuildID, AnnotationModulesRootHash: p.ModulesRootHash,
		AnnotationRootImage: p.RootImage, AnnotationCreated: created} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

// layerAnnotations names a layer: its file name and its ESP path.
func layerAnnotations(espPath string) map[string]string {
	return map[string]string{AnnotationTitle: path.Base(espPath), AnnotationESPPath: espPath}
}

// buildManifest assembles the artifact manifest.
func buildManifest(uki, modules *v1.Descriptor, ann map[string]string) ([]byte, error) {
	sum := sha256.Sum256(emptyConfig)
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Config: v1.Descriptor{MediaType: MediaTypeEmpty, Size: int64(len(emptyConfig)),
			Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, Data: emptyConfig},
		Layers:      []v1.Descriptor{*uki},
		Annotations: ann,
	}
	if modules != nil {
		m.Layers = append(m.Layers, *modules)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
