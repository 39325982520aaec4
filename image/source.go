package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
//	REF                  a registry reference, auth from the docker config
//	oci:DIR              an OCI image layout directory
//	docker-archive:FILE  a `docker save` tarball (one image, or FILE:TAG)
//
// A multi-platform index resolves to the image for platform.
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

func resolveLayout(dir string, platform v1.Platform) (v1.Image, []string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: index: %w", dir, err)
	}
	img, refName, err := pickFromIndex(idx, platform, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: %w", dir, err)
	}
	var names []string
	if refName != "" {
		names = append(names, refName)
	}
	return img, names, nil
}

// pickFromIndex finds the one image for platform in idx, descending into
// nested indexes. Images without a platform match any platform when they
// are the only candidate.
func pickFromIndex(idx v1.ImageIndex, platform v1.Platform, depth int) (v1.Image, string, error) {
	if depth > 4 {
		return nil, "", fmt.Errorf("%w: indexes nested too deep", ErrNoMatch)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var matched, unplatformed []v1.Descriptor
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, "", err
			}
			img, n, err := pickFromIndex(child, platform, depth+1)
			if err == nil {
				return img, firstNonEmpty(n, d.Annotations["org.opencontainers.image.ref.name"]), nil
			}
		case !d.MediaType.IsImage():
		case d.Platform == nil:
			unplatformed = append(unplatformed, d)
		case d.Platform.Satisfies(platform):
			matched = append(matched, d)
		}
	}
	if len(matched) == 0 && len(unplatformed) == 1 {
		matched = unplatformed
	}
	if len(matched) != 1 {
		return nil, "", fmt.Errorf("%w: %d images for %s", ErrNoMatch, len(matched), platform)
	}
	img, err := idx.Image(matched[0].Digest)
	return img, matched[0].Annotations["org.opencontainers.image.ref.name"], err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func resolveArchive(spec string) (v1.Image, []string, error) {
	file, tag := spec, ""
	if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i:], "/") && strings.HasSuffix(spec[:i], ".tar") {
		file, tag = spec[:i], spec[i+1:]
	}
	var t *name.Tag
	if tag != "" {
		tg, err := name.NewTag(tag)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve docker-archive:%s: tag: %w", spec, err)
		}
		t = &tg
	}
	img, err := tarball.ImageFromPath(file, t)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve docker-archive:%s: %w", file, err)
	}
	var names []string
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err == nil {
		for _, d := range m {
			for _, rt := range d.RepoTags {
				if t == nil || rt == t.Name() || rt == tag {
					names = append(names, normalizeName(rt))
				}
			}
		}
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
