package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Artifact is one file of an upgrade: the UKI or the modules image.
type Artifact struct {
	Name   string // for messages: a path, or REPO@DIGEST
	Size   int64  // bytes; -1 when unknown
	Digest string // "sha256:..." when the source vouches for it (OCI), else ""
	Open   func(ctx context.Context) (io.ReadCloser, error)
}

// Source is where an upgrade's artifacts come from: a UKI file (its
// modules image beside it), a directory, an OCI image layout or a
// registry.
type Source interface {
	// String names the source, digest-pinned where that applies.
	String() string
	// UKI returns the signed UKI.
	UKI(ctx context.Context) (Artifact, error)
	// Modules returns the modules image the UKI's config names (file is
	// its ESP path, e.g. "initos/modules-6.1.0-57-amd64.sqfs").
	Modules(ctx context.Context, file string) (Artifact, error)
	// RootImage is the root image reference published with the UKI ("" if none).
	RootImage() string
	// Close releases the source.
	Close() error
}

// ErrSource reports a source that does not hold what an upgrade needs.
var ErrSource = errors.New("upgrade source")

// OpenSource opens from: an OCI image layout directory (it has
// index.json, or is written oci:DIR), another directory, a UKI file, or a
// registry reference (REPO:TAG or REPO@sha256:...), pulled digest-pinned.
func OpenSource(ctx context.Context, from string, o RegistryOptions) (Source, error) {
	if from == "" {
		return nil, fmt.Errorf("%w: none given (--from FILE|DIR|REF)", ErrSource)
	}
	if dir, ok := strings.CutPrefix(from, "oci:"); ok {
		return openLayout(dir)
	}
	fi, err := os.Stat(from)
	switch {
	case err == nil && fi.IsDir():
		if _, err := os.Stat(filepath.Join(from, "index.json")); err == nil {
			return openLayout(from)
		}
		return openDir(from)
	case err == nil:
		return &fileSource{uki: from, dir: filepath.Dir(from)}, nil
	case looksLikePath(from):
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	return openRegistry(ctx, from, o)
}

// looksLikePath tells a missing file from a registry reference.
func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasSuffix(s, ".efi")
}

// fileSource is a UKI file; the modules image is looked up beside it.
type fileSource struct{ uki, dir string }

func (s *fileSource) String() string { return s.uki }
func (s *fileSource) Close() error   { return nil }
func (s *fileSource) RootImage() string {
	return ""
}

func (s *fileSource) UKI(ctx context.Context) (Artifact, error) { return fileArtifact(s.uki) }

func (s *fileSource) Modules(ctx context.Context, file string) (Artifact, error) {
	return findBeside(s.dir, file)
}

// dirSource is a directory holding a UKI (EFI/Linux/initos.efi,
// initos.efi or the only *.efi) and the modules image (at its ESP path,
// or by its base name).
type dirSource struct{ dir string }

func openDir(dir string) (*dirSource, error) { return &dirSource{dir: dir}, nil }

func (s *dirSource) String() string    { return s.dir }
func (s *dirSource) Close() error      { return nil }
func (s *dirSource) RootImage() string { return "" }

func (s *dirSource) UKI(ctx context.Context) (Artifact, error) {
	for _, p := range []string{UKIPath, "initos.efi"} {
		if a, err := fileArtifact(filepath.Join(s.dir, filepath.FromSlash(p))); err == nil {
			return a, nil
		}
	}
	efis, _ := filepath.Glob(filepath.Join(s.dir, "*.efi"))
	if len(efis) != 1 {
		return Artifact{}, fmt.Errorf("%w: %s holds no %s, no initos.efi, and %d *.efi files (want exactly one)", ErrSource, s.dir, UKIPath, len(efis))
	}
	return fileArtifact(efis[0])
}

func (s *dirSource) Modules(ctx context.Context, file string) (Artifact, error) {
	return findBeside(s.dir, file)
}

// findBeside finds the modules image file (an ESP path) in dir: at that
// path, or by its base name.
func findBeside(dir, file string) (Artifact, error) {
	for _, p := range []string{filepath.FromSlash(file), path.Base(file)} {
		if a, err := fileArtifact(filepath.Join(dir, p)); err == nil {
			return a, nil
		}
	}
	return Artifact{}, fmt.Errorf("%w: the modules image %s the UKI names is not in %s (neither %s nor %s)", ErrSource, path.Base(file), dir, file, path.Base(file))
}

// fileArtifact describes a regular file.
func fileArtifact(p string) (Artifact, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return Artifact{}, err
	}
	if !fi.Mode().IsRegular() {
		return Artifact{}, fmt.Errorf("%w: %s is not a regular file", ErrSource, p)
	}
	return Artifact{Name: p, Size: fi.Size(), Open: func(context.Context) (io.ReadCloser, error) { return os.Open(p) }}, nil
}
