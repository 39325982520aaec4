package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"initos/modimage"
	"initos/squashfs"
)

// Bounds of what is kept in memory from an image.
const (
	maxKernelSize    = 256 << 20
	maxOSReleaseSize = 64 << 10
)

// trees are the image directories routed into the modules image, and
// where they go.
var trees = []struct{ from, to string }{
	{"usr/lib/modules", modimage.ModulesDir},
	{"lib/modules", modimage.ModulesDir},
	{"usr/lib/firmware", modimage.FirmwareDir},
	{"lib/firmware", modimage.FirmwareDir},
}

// router routes the tar entries of the layers into the squashfs writer
// and keeps the kernel images and os-release files.
type router struct {
	w        *squashfs.Writer
	only     string            // the one release to take; "" means all
	epoch    time.Time         // modification time of recreated directories
	releases []string          // module directories, in order of appearance
	kernels  map[string][]byte // image path -> kernel image
	osrel    map[string][]byte // image path -> os-release
	skipped  map[string]bool   // releases left out (only set)
}

func newRouter(w *squashfs.Writer, only string, epoch time.Time) *router {
	return &router{w: w, only: only, epoch: epoch, kernels: map[string][]byte{}, osrel: map[string][]byte{}, skipped: map[string]bool{}}
}

// cleanName returns a tar entry's name relative to the root; ".."
// components are refused.
func cleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar entry %q: path leaves the root", name)
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// mapPath returns where an image path goes in the modules image ("" for
// nowhere) and, for a module directory, its release.
func (r *router) mapPath(p string) (dst, release string) {
	for _, t := range trees {
		rest, ok := strings.CutPrefix(p, t.from+"/")
		if !ok {
			continue
		}
		if t.to == modimage.FirmwareDir {
			return t.to + "/" + rest, ""
		}
		rel, sub, _ := strings.Cut(rest, "/")
		if r.only != "" && rel != r.only {
			r.skipped[rel] = true
			return "", ""
		}
		if sub == "build" || sub == "source" || sub == "vmlinuz" {
			return "", rel // headers links; the kernel is kept apart
		}
		return modimage.ModulesDir + "/" + rest, rel
	}
	return "", ""
}

// layer routes the entries of one layer.
func (r *router) layer(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		p, err := cleanName(h.Name)
		if err != nil {
			return err
		}
		if err := r.entry(p, h, tr); err != nil {
			return err
		}
	}
}

func (r *router) entry(p string, h *tar.Header, tr *tar.Reader) error {
	dir, base := path.Split(p)
	if base == ".wh..wh..opq" {
		return r.whiteout(strings.TrimSuffix(dir, "/"), true)
	}
	if name, ok := strings.CutPrefix(base, ".wh."); ok {
		return r.whiteout(dir+name, false)
	}
	if err := r.keep(p, h, tr); err != nil {
		return err
	}
	dst, rel := r.mapPath(p)
	if rel != "" && !r.seen(rel) {
		r.releases = append(r.releases, rel)
	}
	if dst == "" {
		return nil
	}
	e, skip, err := squashfs.TarEntry(h)
	if err != nil || skip {
		return err
	}
	e.Path = dst
	if h.Typeflag == tar.TypeLink {
		target, err := cleanName(h.Linkname)
		if err != nil {
			return err
		}
		if e.HardLink, _ = r.mapPath(target); e.HardLink == "" {
			return fmt.Errorf("%s: hard link to %s, outside the modules tree", p, target)
		}
	}
	return r.w.Add(e, tr)
}

func (r *router) seen(rel string) bool {
	for _, s := range r.releases {
		if s == rel {
			return true
		}
	}
	return false
}

// keep keeps kernel images and os-release files in memory.
func (r *router) keep(p string, h *tar.Header, tr *tar.Reader) error {
	m, limit := r.kernels, int64(maxKernelSize)
	switch {
	case isKernelPath(p):
	case p == "etc/os-release" || p == "usr/lib/os-release":
		m, limit = r.osrel, maxOSReleaseSize
	default:
		return nil
	}
	delete(m, p)
	if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
		return nil // a symlink (/boot/vmlinuz -> vmlinuz-6.1...) adds nothing
	}
	if h.Size > limit {
		return fmt.Errorf("%s: %d bytes, more than %d", p, h.Size, limit)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, b); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	m[p] = b
	return nil
}

// isKernelPath reports whether an image path is a kernel image:
// boot/vmlinuz* or a module directory's vmlinuz.
func isKernelPath(p string) bool {
	if strings.HasPrefix(p, "boot/vmlinuz") && !strings.Contains(p[len("boot/"):], "/") {
		return true
	}
	for _, t := range trees[:2] {
		if rest, ok := strings.CutPrefix(p, t.from+"/"); ok {
			_, sub, _ := strings.Cut(rest, "/")
			return sub == "vmlinuz"
		}
	}
	return false
}

// whiteout deletes what earlier layers put at p (its contents only, when
// opaque): in the modules image and among the kept files.
func (r *router) whiteout(p string, opaque bool) error {
	for _, m := range []map[string][]byte{r.kernels, r.osrel} {
		for k := range m {
			if k == p || strings.HasPrefix(k, p+"/") || p == "" {
				delete(m, k)
			}
		}
	}
	for _, t := range trees {
		var dsts []string
		switch {
		case p == "" || t.from == p || strings.HasPrefix(t.from, p+"/"):
			dsts = r.treeRoots(t.to)
		case strings.HasPrefix(p, t.from+"/"):
			if dst, _ := r.mapPath(p); dst != "" {
				dsts = []string{dst}
			}
		}
		inside := strings.HasPrefix(p, t.from+"/")
		for _, d := range dsts {
			if err := r.remove(d, opaque && inside); err != nil {
				return err
			}
		}
	}
	return nil
}

// treeRoots returns what a tree's entries live under in the image.
func (r *router) treeRoots(to string) []string {
	if to == modimage.FirmwareDir {
		return []string{to}
	}
	var out []string
	for _, rel := range r.releases {
		out = append(out, to+"/"+rel)
	}
	return out
}

// remove removes dst from the image; keepDir re-adds it as an empty
// directory (an opaque whiteout).
func (r *router) remove(dst string, keepDir bool) error {
	if err := r.w.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if !keepDir {
		return nil
	}
	return r.w.Add(squashfs.Entry{Path: dst, Mode: fs.ModeDir | 0o755, ModTime: r.epoch}, nil)
}
