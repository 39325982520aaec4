package image

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ErrNoMatch reports a multi-platform source with no image for the
// wanted platform, or a layout with several candidates.
var ErrNoMatch = errors.New("no matching image")

// HostPlatform is the platform of the running binary (linux/GOARCH).
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// ParsePlatform parses "os/arch[/variant]" ("" = the host platform).
func ParsePlatform(s string) (v1.Platform, error) {
	if s == "" {
		return HostPlatform(), nil
	}
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return v1.Platform{}, fmt.Errorf("parse platform %q: want os/arch[/variant]", s)
	}
	return *p, nil
}

// Resolve opens an image source and returns the image for platform with
// the names it should be known by:
//
//	REF                                 a registry reference, auth from the docker config
//	oci:DIR[:TAG]                       an OCI image layout; TAG picks the image
//	                                    whose org.opencontainers.image.ref.name is TAG
//	docker-archive:FILE[:NAME[:TAG]]    a `docker save` tarball; NAME:TAG picks an
//	docker-archive:FILE:@INDEX          image by one of its RepoTags, @INDEX by its
//	                                    position in manifest.json (from 0)
//
// The syntax is skopeo's (containers-transports(5)): the path ends at the
// first colon. Without TAG or INDEX the source must hold one image; if it
// holds several, the error lists their tags. A multi-platform index
// resolves to the image for platform.
func Resolve(ctx context.Context, src string, platform v1.Platform) (v1.Image, []string, error) {
	switch {
	case strings.HasPrefix(src, "oci:"):
		return resolveLayout(strings.TrimPrefix(src, "oci:"), platform)
	case strings.HasPrefix(src, "docker-archive:"):
		return resolveArchive(strings.TrimPrefix(src, "docker-archive:"))
	}
	ref, err := name.ParseReference(src)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %q: %w", src, err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithPlatform(platform),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	var names []string
	if _, isTag := ref.(name.Tag); isTag {
		names = append(names, ref.Name())
	}
	return img, names, nil
}

// normalizeName returns the canonical form of an image name, or name
// itself when it does not parse.
func normalizeName(s string) string {
	if ref, err := name.ParseReference(s); err == nil {
		return ref.Name()
	}
	return s
}
