package image

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation names an image in an OCI layout's index.json
// (image-spec annotations.md); skopeo's oci:DIR:TAG and umoci's
// --image DIR:TAG both use it as the tag.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// resolveLayout opens "DIR[:TAG]", an OCI image layout.
func resolveLayout(spec string, platform v1.Platform) (v1.Image, []string, error) {
	dir, tag, _ := strings.Cut(spec, ":")
	if dir == "" {
		return nil, nil, fmt.Errorf("resolve oci:%s: no layout directory given", spec)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: %w", spec, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: index: %w", spec, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: index: %w", spec, err)
	}
	cands, err := layoutCandidates(m.Manifests, tag)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: %w", spec, err)
	}
	img, d, err := pickDescriptor(idx, cands, platform, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve oci:%s: %w", spec, err)
	}
	var names []string
	if n := d.Annotations[refNameAnnotation]; n != "" {
		names = append(names, n)
	}
	return img, names, nil
}

// layoutCandidates returns the descriptors of a layout's index.json that
// TAG selects: those named TAG, or all of them when no tag is given and
// they carry at most one name.
func layoutCandidates(ds []v1.Descriptor, tag string) ([]v1.Descriptor, error) {
	seen := map[string]bool{}
	var tags []string
	for _, d := range ds {
		if n := d.Annotations[refNameAnnotation]; n != "" && !seen[n] {
			seen[n] = true
			tags = append(tags, n)
		}
	}
	sort.Strings(tags)
	if tag == "" {
		if len(tags) > 1 {
			return nil, fmt.Errorf("%w: the layout holds %d images with different tags; choose one with oci:DIR:TAG (tags: %s)",
				ErrNoMatch, len(ds), strings.Join(tags, ", "))
		}
		return ds, nil
	}
	var out []v1.Descriptor
	for _, d := range ds {
		if d.Annotations[refNameAnnotation] == tag {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no image tagged %q (tags: %s)", ErrNoMatch, tag, orNone(tags))
	}
	return out, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// pickDescriptor finds the one image for platform among the descriptors
// ds of idx, descending into nested indexes. An image without a platform
// matches any platform when it is the only candidate.
func pickDescriptor(idx v1.ImageIndex, ds []v1.Descriptor, platform v1.Platform, depth int) (v1.Image, v1.Descriptor, error) {
	if depth > 4 {
		return nil, v1.Descriptor{}, fmt.Errorf("%w: indexes nested too deep", ErrNoMatch)
	}
	type match struct {
		img v1.Image // nil: resolve d in idx
		d   v1.Descriptor
	}
	var matched, unplatformed []match
	for _, d := range ds {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, d, err
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, d, err
			}
			if img, _, err := pickDescriptor(child, cm.Manifests, platform, depth+1); err == nil {
				matched = append(matched, match{img, d})
			}
		case !d.MediaType.IsImage():
		case d.Platform == nil:
			unplatformed = append(unplatformed, match{nil, d})
		case d.Platform.Satisfies(platform):
			matched = append(matched, match{nil, d})
		}
	}
	if len(matched) == 0 && len(unplatformed) == 1 {
		matched = unplatformed
	}
	if len(matched) != 1 {
		return nil, v1.Descriptor{}, fmt.Errorf("%w: %d images for %s", ErrNoMatch, len(matched), platform)
	}
	if m := matched[0]; m.img != nil {
		return m.img, m.d, nil
	}
	img, err := idx.Image(matched[0].d.Digest)
	return img, matched[0].d, err
}

// resolveArchive opens "FILE[:NAME[:TAG]]" or "FILE:@INDEX", a `docker
// save` tarball. The file stays open while the image is in use.
func resolveArchive(spec string) (v1.Image, []string, error) {
	file, sel, _ := strings.Cut(spec, ":")
	src := "resolve docker-archive:" + spec
	if file == "" {
		return nil, nil, fmt.Errorf("%s: no archive file given", src)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", file)
	}
	var magic [4]byte
	if err == nil {
		f.ReadAt(magic[:], 0)
		if bytes.HasPrefix(magic[:], gzipMagic) || bytes.HasPrefix(magic[:], zstdMagic) {
			err = fmt.Errorf("%s is compressed: decompress it first", file)
		}
	}
	var a *dockerArchive
	if err == nil {
		a, err = readDockerArchive(f, fi.Size(), file)
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	runtime.AddCleanup(a, func(f *os.File) { f.Close() }, f)
	i, names, err := a.choose(sel)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	img, err := a.image(i)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src, err)
	}
	return img, names, nil
}

// choose picks the image sel names ("", "@INDEX" or "NAME[:TAG]") and
// returns its index in manifest.json and its names.
func (a *dockerArchive) choose(sel string) (int, []string, error) {
	switch {
	case sel == "":
		if len(a.manifest) != 1 {
			return 0, nil, fmt.Errorf("%w: the archive holds %d images; choose one with docker-archive:FILE:NAME:TAG or docker-archive:FILE:@INDEX (%s)",
				ErrNoMatch, len(a.manifest), a.listing())
		}
		return 0, normalizeNames(a.manifest[0].RepoTags), nil
	case strings.HasPrefix(sel, "@"):
		i, err := strconv.Atoi(sel[1:])
		if err != nil || i < 0 {
			return 0, nil, fmt.Errorf("invalid image index %q: want @0, @1, ...", sel)
		}
		if i >= len(a.manifest) {
			return 0, nil, fmt.Errorf("%w: no image %s: the archive holds %d (%s)", ErrNoMatch, sel, len(a.manifest), a.listing())
		}
		return i, normalizeNames(a.manifest[i].RepoTags), nil
	case strings.Contains(sel, "@"):
		return 0, nil, fmt.Errorf("reference %q: a docker archive selects by NAME:TAG or @INDEX, not by digest", sel)
	}
	want, err := name.NewTag(sel)
	if err != nil {
		return 0, nil, fmt.Errorf("reference %q: %w", sel, err)
	}
	for i, e := range a.manifest {
		for _, rt := range e.RepoTags {
			if t, err := name.NewTag(rt); err == nil && t.Name() == want.Name() {
				return i, []string{want.Name()}, nil
			}
		}
	}
	return 0, nil, fmt.Errorf("%w: no image tagged %s (%s)", ErrNoMatch, want.Name(), a.listing())
}

// listing names the archive's images: their tags and indexes.
func (a *dockerArchive) listing() string {
	var out []string
	for i, e := range a.manifest {
		out = append(out, strings.TrimSpace(strings.Join(e.RepoTags, " ")+" @"+strconv.Itoa(i)))
	}
	return strings.Join(out, ", ")
}

func normalizeNames(s []string) []string {
	var out []string
	for _, n := range s {
		out = append(out, normalizeName(n))
	}
	return out
}
