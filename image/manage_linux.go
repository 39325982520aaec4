package image

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"initos/btrfsioctl"
)

func (s *Store) imageOf(ix *indexFile, digest string) Image {
	im := Image{Digest: digest, Names: ix.names(digest), Path: s.imagePath(digest)}
	if e := ix.Images[digest]; e != nil {
		im.Chain, im.Config = e.Chain, e.Config
	}
	return im
}

// List returns the installed images sorted by digest.
func (s *Store) List() ([]Image, error) {
	ix, err := readIndex(s.Dir)
	if err != nil {
		return nil, err
	}
	var out []Image
	for d := range ix.Images {
		out = append(out, s.imageOf(ix, d))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
}

// lookup finds an image by name (as stored or in canonical form), by
// digest, or by a unique digest prefix of at least 12 hex digits. byName
// reports a match by name: removing it removes that name only.
func (ix *indexFile) lookup(ref string) (digest string, byName bool, err error) {
	if d, ok := ix.Refs[ref]; ok {
		return d, true, nil
	}
	if d, ok := ix.Refs[normalizeName(ref)]; ok {
		return d, true, nil
	}
	if _, ok := ix.Images[ref]; ok {
		return ref, false, nil
	}
	if hx := strings.TrimPrefix(ref, "sha256:"); len(hx) >= 12 {
		var found []string
		for d := range ix.Images {
			if strings.HasPrefix(d, "sha256:"+hx) {
				found = append(found, d)
			}
		}
		if len(found) == 1 {
			return found[0], false, nil
		}
	}
	return "", false, fmt.Errorf("%w: %q", ErrNotFound, ref)
}

// Get returns the installed image named ref.
func (s *Store) Get(ref string) (Image, error) {
	ix, err := readIndex(s.Dir)
	if err != nil {
		return Image{}, err
	}
	d, _, err := ix.lookup(ref)
	if err != nil {
		return Image{}, err
	}
	return s.imageOf(ix, d), nil
}

// Remove removes the name ref; when ref is a digest, or the image has no
// other name left, the image subvolume goes too. Its layers stay cached
// until GC.
func (s *Store) Remove(ref string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	ix, err := readIndex(s.Dir)
	if err != nil {
		return err
	}
	d, byName, err := ix.lookup(ref)
	if err != nil {
		return fmt.Errorf("remove image: %w", err)
	}
	if byName {
		// The name only, in the form it is stored in.
		if _, ok := ix.Refs[ref]; ok {
			delete(ix.Refs, ref)
		} else {
			delete(ix.Refs, normalizeName(ref))
		}
	} else {
		for n, v := range ix.Refs {
			if v == d {
				delete(ix.Refs, n)
			}
		}
	}
	if len(ix.names(d)) == 0 {
		delete(ix.Images, d)
	}
	// Index first: a crash after it leaves only garbage for GC.
	if err := ix.write(s.Dir); err != nil {
		return err
	}
	if _, ok := ix.Images[d]; !ok {
		return removeSubvolOrDir(s.imagePath(d))
	}
	return nil
}

// GC deletes layers no installed image uses and image subvolumes missing
// from the index, and returns the paths it deleted.
func (s *Store) GC() ([]string, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ix, err := readIndex(s.Dir)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for d, im := range ix.Images {
		keep[filepath.Join("images", digestName(d))] = true
		for _, c := range im.Chain {
			keep[filepath.Join("layers", digestName(c))] = true
		}
	}
	var removed []string
	for _, dir := range []string{"images", "layers"} {
		ents, err := os.ReadDir(filepath.Join(s.Dir, dir))
		if err != nil {
			return removed, fmt.Errorf("gc image store: %w", err)
		}
		for _, e := range ents {
			rel := filepath.Join(dir, e.Name())
			if keep[rel] {
				continue
			}
			if err := removeSubvolOrDir(filepath.Join(s.Dir, rel)); err != nil {
				return removed, fmt.Errorf("gc image store: %w", err)
			}
			removed = append(removed, rel)
		}
	}
	return removed, nil
}

// RootName derives a root name from an image name: its repository's last
// element and tag ("registry/a/busybox:1.36" -> "busybox-1.36").
func RootName(ref string) string {
	if r, err := name.ParseReference(ref); err == nil {
		repo := r.Context().RepositoryStr()
		repo = repo[strings.LastIndex(repo, "/")+1:]
		if t, ok := r.(name.Tag); ok {
			return repo + "-" + t.TagStr()
		}
		return repo
	}
	return strings.NewReplacer("/", "_", ":", "-", "@", "-").Replace(ref)
}

// Root makes roots/<as>, a writable snapshot of the image named ref, and
// returns its path. It fails if the root exists.
func (s *Store) Root(ref, as string) (string, error) {
	unlock, err := s.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	ix, err := readIndex(s.Dir)
	if err != nil {
		return "", err
	}
	d, _, err := ix.lookup(ref)
	if err != nil {
		return "", fmt.Errorf("make root: %w", err)
	}
	if as == "" {
		as = RootName(ref)
	}
	if _, err := CleanPath(as); err != nil || strings.Contains(as, "/") || strings.HasPrefix(as, ".") {
		return "", fmt.Errorf("make root: invalid root name %q", as)
	}
	dst := filepath.Join(s.Dir, "roots", as)
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("make root %s: %w", dst, os.ErrExist)
	}
	tmp := s.tempPath("roots")
	if err := btrfsioctl.Snapshot(s.imagePath(d), tmp, false); err != nil {
		return "", fmt.Errorf("make root: %w", err)
	}
	if err := commitRename(tmp, dst); err != nil {
		btrfsioctl.Delete(tmp)
		return "", fmt.Errorf("make root: %w", err)
	}
	return dst, nil
}
