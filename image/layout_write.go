package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"

	"initos/internal/atomicfile"
)

// ociLayoutFile is the content of an OCI layout's oci-layout file
// (image-spec image-layout.md).
const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// layoutWriter adds content-addressed blobs and tags to an OCI image
// layout. Blobs are written atomically under their digest; index.json is
// rewritten atomically last, under flock of the layout directory.
type layoutWriter struct {
	dir, blobs string
}

func newLayoutWriter(dir string) (*layoutWriter, error) {
	lw := &layoutWriter{dir: dir, blobs: filepath.Join(dir, "blobs", "sha256")}
	if err := os.MkdirAll(lw.blobs, 0o755); err != nil {
		return nil, fmt.Errorf("oci layout: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := atomicfile.WriteFile(filepath.Join(dir, "oci-layout"), []byte(ociLayoutFile), 0o644); err != nil {
			return nil, fmt.Errorf("oci layout: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("oci layout: %w", err)
	default:
		var v struct{ ImageLayoutVersion string }
		if json.Unmarshal(b, &v) != nil || v.ImageLayoutVersion != "1.0.0" {
			return nil, fmt.Errorf("oci layout %s: oci-layout is %q, want version 1.0.0", dir, b)
		}
	}
	if _, err := lw.readIndex(); err != nil { // fail before writing blobs
		return nil, err
	}
	return lw, nil
}

func (lw *layoutWriter) blobPath(h v1.Hash) string { return filepath.Join(lw.blobs, h.Hex) }

// writeBlob stores b under its digest (unless it is there already).
func (lw *layoutWriter) writeBlob(b []byte) (v1.Hash, error) {
	h := sha256Hash(b)
	if fi, err := os.Stat(lw.blobPath(h)); err == nil && fi.Size() == int64(len(b)) {
		return h, nil
	}
	return h, atomicfile.WriteFile(lw.blobPath(h), b, 0o644)
}

// readIndex reads index.json (an empty index if there is none).
func (lw *layoutWriter) readIndex() (*v1.IndexManifest, error) {
	ix := &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	b, err := os.ReadFile(filepath.Join(lw.dir, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return ix, nil
	}
	if err == nil && len(b) > maxArchiveJSON {
		err = fmt.Errorf("%w: %d bytes", ErrLimit, len(b))
	}
	if err == nil {
		err = json.Unmarshal(b, ix)
	}
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: index.json: %w", lw.dir, err)
	}
	return ix, nil
}

// tag adds the manifest d to index.json, replacing any image with the
// same org.opencontainers.image.ref.name.
func (lw *layoutWriter) tag(d v1.Descriptor) error {
	dfd, err := unix.Open(lw.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: lw.dir, Err: err}
	}
	defer unix.Close(dfd)
	if err := unix.Flock(dfd, unix.LOCK_EX); err != nil {
		return &os.PathError{Op: "lock", Path: lw.dir, Err: err}
	}
	ix, err := lw.readIndex()
	if err != nil {
		return err
	}
	kept := ix.Manifests[:0]
	for _, m := range ix.Manifests {
		if m.Annotations[refNameAnnotation] != d.Annotations[refNameAnnotation] {
			kept = append(kept, m)
		}
	}
	ix.Manifests = append(kept, d)
	b, err := json.Marshal(ix)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(lw.dir, "index.json"), b, 0o644)
}

// blobWriter streams a layer: what is written to it (the uncompressed
// tar) is hashed (the diffID), compressed, hashed again (the digest) and
// written to a temporary file that commit names by its digest.
type blobWriter struct {
	f         *atomicfile.File
	buf       *bufio.Writer
	diff      hash.Hash
	digest    hash.Hash
	size      int64
	comp      io.WriteCloser // nil: uncompressed
	mediaType types.MediaType
}

func (lw *layoutWriter) newLayerBlob(c Compression, level int) (*blobWriter, error) {
	f, err := atomicfile.Create(filepath.Join(lw.blobs, "layer"), 0o644)
	if err != nil {
		return nil, err
	}
	w := &blobWriter{f: f, buf: bufio.NewWriterSize(f, 1<<20), diff: sha256.New(), digest: sha256.New()}
	if w.comp, w.mediaType, err = newCompressor(c, level, (*blobSink)(w)); err != nil {
		f.Abort()
		return nil, err
	}
	return w, nil
}

// newCompressor returns the compressing writer for c. Its output depends
// only on the bytes written, not on how they are split into writes or on
// the number of goroutines: pgzip cuts fixed 1 MiB blocks, zstd fixed
// 8 MiB frames, so layers are reproducible across machines.
func newCompressor(c Compression, level int, w io.Writer) (io.WriteCloser, types.MediaType, error) {
	switch c {
	case Gzip:
		if level == 0 {
			level = pgzip.DefaultCompression
		}
		zw, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, "", fmt.Errorf("gzip level %d: %w", level, err)
		}
		if err := zw.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, "", err
		}
		return zw, types.OCILayer, nil
	case Zstd:
		lvl := zstd.SpeedDefault
		if level != 0 {
			lvl = zstd.EncoderLevel(level)
		}
		zw, err := newFrameWriter(w, lvl)
		if err != nil {
			return nil, "", fmt.Errorf("zstd level %d: %w", level, err)
		}
		return zw, types.OCILayerZStd, nil
	case Uncompressed:
		return nil, types.OCIUncompressedLayer, nil
	}
	return nil, "", fmt.Errorf("unknown compression %q", c)
}

// blobSink receives the compressed stream.
type blobSink blobWriter

func (s *blobSink) Write(p []byte) (int, error) {
	s.digest.Write(p)
	s.size += int64(len(p))
	return s.buf.Write(p)
}

// Write takes the uncompressed tar.
func (w *blobWriter) Write(p []byte) (int, error) {
	w.diff.Write(p)
	if w.comp == nil {
		return (*blobSink)(w).Write(p)
	}
	return w.comp.Write(p)
}

// commit finishes the blob and names it by its digest.
func (w *blobWriter) commit() (v1.Descriptor, v1.Hash, error) {
	if w.comp != nil {
		err := w.comp.Close()
		w.comp = nil
		if err != nil {
			return v1.Descriptor{}, v1.Hash{}, err
		}
	}
	if err := w.buf.Flush(); err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	d := v1.Descriptor{MediaType: w.mediaType, Size: w.size,
		Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.digest.Sum(nil))}}
	diffID := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.diff.Sum(nil))}
	if err := w.f.CommitAs(filepath.Join(filepath.Dir(w.f.Path()), d.Digest.Hex)); err != nil {
		return d, diffID, err
	}
	return d, diffID, nil
}

// abort drops the blob unless it was committed (stopping the
// compressor's goroutines first).
func (w *blobWriter) abort() {
	if w.comp != nil {
		w.comp.Close()
	}
	w.f.Abort()
}
