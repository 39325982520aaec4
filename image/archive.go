package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Bounds on what a docker archive may make the reader hold in memory.
const (
	maxArchiveEntries = 1 << 20  // tar entries indexed
	maxArchiveJSON    = 16 << 20 // manifest.json, one config
)

// Magic numbers of the layer compressions (RFC 1952, RFC 8878).
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// archiveFile is where a regular file's content lies in the archive.
type archiveFile struct{ off, size int64 }

// archiveEntry is one image of manifest.json (the `docker save` format,
// moby image/spec "Combined Image JSON + Filesystem Changeset Format").
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerArchive is an indexed `docker save` tarball: one pass over its
// headers records every file's offset, so configs and layers are then
// read in place, without scanning the tar again.
type dockerArchive struct {
	r        io.ReaderAt
	name     string
	files    map[string]archiveFile // by clean name
	links    map[string]string      // symlink or hard link name -> target
	manifest []archiveEntry
}

// posReader tracks the offset in a ReaderAt read sequentially (tar reads
// header blocks exactly, so after Next the offset is the data's start).
type posReader struct {
	r   io.ReaderAt
	pos int64
	end int64
}

func (p *posReader) Read(b []byte) (int, error) {
	if p.pos >= p.end {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.end-p.pos)]
	n, err := p.r.ReadAt(b, p.pos)
	p.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek lets archive/tar skip file contents without reading them.
func (p *posReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += p.pos
	case io.SeekEnd:
		off += p.end
	}
	if off < 0 {
		return 0, errors.New("seek before start")
	}
	p.pos = off
	return off, nil
}

// readDockerArchive indexes the archive of size bytes in r.
func readDockerArchive(r io.ReaderAt, size int64, name string) (*dockerArchive, error) {
	a := &dockerArchive{r: r, name: name, files: map[string]archiveFile{}, links: map[string]string{}}
	pr := &posReader{r: r, end: size}
	tr := tar.NewReader(pr)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: entry %d: %w", name, n, err)
		}
		if n >= maxArchiveEntries {
			return nil, fmt.Errorf("docker archive %s: %w: more than %d entries", name, ErrLimit, maxArchiveEntries)
		}
		p := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		switch hdr.Typeflag {
		case tar.TypeReg:
			a.files[p] = archiveFile{off: pr.pos, size: hdr.Size}
		case tar.TypeSymlink:
			a.links[p] = path.Join(path.Dir(p), hdr.Linkname)
		case tar.TypeLink:
			a.links[p] = path.Clean(strings.TrimPrefix(hdr.Linkname, "/"))
		}
	}
	b, err := a.readSmall("manifest.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &a.manifest); err != nil {
		return nil, fmt.Errorf("docker archive %s: manifest.json: %w", name, err)
	}
	if len(a.manifest) == 0 {
		return nil, fmt.Errorf("docker archive %s: manifest.json lists no image", name)
	}
	return a, nil
}

// lookup finds the content of the file named p, following links.
func (a *dockerArchive) lookup(p string) (archiveFile, error) {
	p = path.Clean(strings.TrimPrefix(p, "/"))
	for range 16 {
		if f, ok := a.files[p]; ok {
			return f, nil
		}
		t, ok := a.links[p]
		if !ok {
			return archiveFile{}, fmt.Errorf("docker archive %s: no file %q", a.name, p)
		}
		p = t
	}
	return archiveFile{}, fmt.Errorf("docker archive %s: %q: too many links", a.name, p)
}

// open returns a reader of the file named p.
func (a *dockerArchive) open(p string) (*io.SectionReader, error) {
	f, err := a.lookup(p)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(a.r, f.off, f.size), nil
}

// readSmall reads a JSON file of the archive, bounded by maxArchiveJSON.
func (a *dockerArchive) readSmall(p string) ([]byte, error) {
	sr, err := a.open(p)
	if err != nil {
		return nil, err
	}
	if sr.Size() > maxArchiveJSON {
		return nil, fmt.Errorf("docker archive %s: %w: %s is %d bytes, at most %d", a.name, ErrLimit, p, sr.Size(), maxArchiveJSON)
	}
	b := make([]byte, sr.Size())
	if _, err := io.ReadFull(sr, b); err != nil {
		return nil, fmt.Errorf("docker archive %s: read %s: %w", a.name, p, err)
	}
	return b, nil
}

// image returns the i-th image of the archive.
func (a *dockerArchive) image(i int) (v1.Image, error) {
	e := a.manifest[i]
	cfg, err := a.readSmall(e.Config)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfg))
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: config %s: %w", a.name, e.Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("docker archive %s: image %d: %d layers but %d diffIDs in the config", a.name, i, len(e.Layers), len(cf.RootFS.DiffIDs))
	}
	im := &archiveImage{a: a, config: cfg, layers: map[v1.Hash]*archiveLayer{}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2, Config: v1.Descriptor{
		MediaType: types.DockerConfigJSON, Size: int64(len(cfg)), Digest: sha256Hash(cfg)}}
	for j, p := range e.Layers {
		l, err := a.layer(p, cf.RootFS.DiffIDs[j])
		if err != nil {
			return nil, err
		}
		im.layers[l.digest] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: l.f.size, Digest: l.digest})
	}
	if im.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(im)
}

// layer describes the layer blob named p. Its digest is known without
// reading it when the blob is stored by digest (blobs/sha256/HEX) or is
// an uncompressed tar (its digest is its diffID); otherwise it is hashed
// once here.
func (a *dockerArchive) layer(p string, diffID v1.Hash) (*archiveLayer, error) {
	f, err := a.lookup(p)
	if err != nil {
		return nil, err
	}
	l := &archiveLayer{a: a, f: f}
	var magic [4]byte
	io.NewSectionReader(a.r, f.off, f.size).Read(magic[:])
	switch {
	case bytes.HasPrefix(magic[:], gzipMagic):
		l.mediaType = types.DockerLayer
	case bytes.HasPrefix(magic[:], zstdMagic):
		l.mediaType = types.OCILayerZStd
	default:
		l.mediaType, l.digest = types.DockerUncompressedLayer, diffID
	}
	if hx, ok := strings.CutPrefix(path.Clean(p), "blobs/sha256/"); ok && len(hx) == 64 {
		l.digest = v1.Hash{Algorithm: "sha256", Hex: hx}
	}
	if l.digest.Hex == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(a.r, f.off, f.size)); err != nil {
			return nil, fmt.Errorf("docker archive %s: hash %s: %w", a.name, p, err)
		}
		l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	}
	return l, nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// archiveImage is partial.CompressedImageCore for one archive image.
type archiveImage struct {
	a        *dockerArchive
	config   []byte
	manifest []byte
	layers   map[v1.Hash]*archiveLayer
}

func (im *archiveImage) RawConfigFile() ([]byte, error)      { return im.config, nil }
func (im *archiveImage) MediaType() (types.MediaType, error) { return types.DockerManifestSchema2, nil }
func (im *archiveImage) RawManifest() ([]byte, error)        { return im.manifest, nil }

func (im *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := im.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("docker archive %s: no layer %s", im.a.name, h)
}

// archiveLayer is partial.CompressedLayer for a blob in the archive.
type archiveLayer struct {
	a         *dockerArchive
	f         archiveFile
	digest    v1.Hash
	mediaType types.MediaType
}

func (l *archiveLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *archiveLayer) Size() (int64, error)                { return l.f.size, nil }
func (l *archiveLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.a.r, l.f.off, l.f.size)), nil
}
