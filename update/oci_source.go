package update

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryOptions say how to reach registries. The zero value uses the
// docker credential helpers (~/.docker/config.json) and HTTPS, except for
// loopback registries, which go-containerregistry reaches over HTTP.
type RegistryOptions struct {
	Insecure  bool              // plain HTTP for every registry
	Keychain  authn.Keychain    // nil: authn.DefaultKeychain
	Transport http.RoundTripper // nil: remote.DefaultTransport
}

func (o RegistryOptions) nameOptions() []name.Option {
	if o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (o RegistryOptions) remoteOptions(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	return opts
}

// openRegistry resolves ref to a manifest digest once and reads
// everything else by that digest: what is staged is what was resolved,
// even if the tag moves meanwhile.
func openRegistry(ctx context.Context, ref string, o RegistryOptions) (Source, error) {
	r, err := name.ParseReference(ref, o.nameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is no file, directory or registry reference: %w", ErrSource, ref, err)
	}
	desc, err := remote.Get(r, o.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSource, r, err)
	}
	pinned := r.Context().Digest(desc.Digest.String())
	if d, ok := r.(name.Digest); ok && d.DigestStr() != desc.Digest.String() {
		return nil, fmt.Errorf("%w: %s: the registry's manifest has digest %s", ErrSource, r, desc.Digest)
	}
	info, err := parseArtifact(desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pinned, err)
	}
	open := func(ctx context.Context, h v1.Hash) (io.ReadCloser, error) {
		l, err := remote.Layer(pinned.Context().Digest(h.String()), o.remoteOptions(ctx)...)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}
	return &artifactSource{name: pinned.String(), info: info, open: open}, nil
}

// openLayout reads the one InitOS boot artifact of an OCI image layout
// (the newest one when `initos publish` appended several).
func openLayout(dir string) (Source, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: OCI layout %s: %w", ErrSource, dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("%w: OCI layout %s: %w", ErrSource, dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%w: OCI layout %s: %w", ErrSource, dir, err)
	}
	for i := len(im.Manifests) - 1; i >= 0; i-- {
		d := im.Manifests[i]
		raw, err := p.Bytes(d.Digest)
		if err != nil {
			continue
		}
		if got, _, _ := v1.SHA256(bytes.NewReader(raw)); got != d.Digest {
			return nil, fmt.Errorf("%w: OCI layout %s: manifest %s has digest %s", ErrSource, dir, d.Digest, got)
		}
		info, err := parseArtifact(raw)
		if err != nil {
			continue
		}
		open := func(_ context.Context, h v1.Hash) (io.ReadCloser, error) { return p.Blob(h) }
		return &artifactSource{name: dir + "@" + d.Digest.String(), info: info, open: open}, nil
	}
	return nil, fmt.Errorf("%w: OCI layout %s holds no InitOS boot artifact (artifactType %s)", ErrSource, dir, ArtifactType)
}
