package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Compression is the compression of an imported layer.
type Compression string

// Layer compressions. Gzip is what every OCI tool reads; zstd is smaller
// and about twice as fast, and is read by containerd, podman, skopeo and
// this package, but not by umoci 0.4.
const (
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Uncompressed Compression = "none"
)

// ImportOptions controls Import. The zero value imports for the host's
// platform with a gzip layer, tagged "latest".
type ImportOptions struct {
	// Tag is the image's org.opencontainers.image.ref.name in the
	// layout's index.json; an image with the same tag is replaced.
	Tag string

	// Epoch, if set (SOURCE_DATE_EPOCH), clamps every mtime to it and is
	// the image's creation time. Otherwise mtimes are kept and the
	// creation time is the newest mtime of the root.
	Epoch *time.Time

	Compression Compression // default Gzip
	Level       int         // compression level (gzip 1-9, zstd 1-4); 0: default

	Platform v1.Platform // default HostPlatform()
	Config   v1.Config   // runtime configuration (Env, Entrypoint, Cmd, ...)

	// Progress, if set, is called as the source is read: bytes read so
	// far of total (a directory: file content; a tar: the file; total is
	// -1 when unknown, as for standard input).
	Progress func(read, total int64)
}

// ImportResult describes an imported image.
type ImportResult struct {
	Manifest v1.Descriptor // as listed in index.json, with its tag
	Config   v1.Hash       // config blob digest
	Layer    v1.Descriptor // the layer blob
	DiffID   v1.Hash       // digest of the uncompressed layer tar
	Entries  int64         // tar entries of the layer
	Bytes    int64         // bytes of regular file content
}

// Import makes an OCI image of one layer from a root filesystem and
// writes it into the OCI image layout in the directory layout (created if
// needed; other images in it are kept). src is a directory, a tar file
// (plain, gzip, zstd, xz or bzip2, such as mmdebstrap's output), or "-"
// for a tar on standard input.
//
// The result is reproducible: the same root and options give the same
// bytes. Entries come in the tar's order, or for a directory sorted by
// name (as tar --sort=name); names lose their leading "./" and the root
// entry; owners are numeric; mtimes are whole seconds (clamped to Epoch);
// atime, ctime and user/group names are dropped; xattrs are kept. A
// directory import does not cross into other filesystems, skips sockets,
// and records files sharing an inode as hard links. The layer is
// streamed: read once, hashed and compressed on the fly.
func Import(ctx context.Context, src, layout string, opt ImportOptions) (ImportResult, error) {
	opt = opt.withDefaults()
	var res ImportResult
	lw, err := newLayoutWriter(layout)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", src, err)
	}
	newest, err := importLayer(ctx, src, lw, opt, &res)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", src, err)
	}
	created := newest
	if opt.Epoch != nil {
		created = *opt.Epoch
	}
	cfg, err := json.Marshal(imageConfig(opt, res.DiffID, created))
	if err != nil {
		return res, err
	}
	if res.Config, err = lw.writeBlob(cfg); err != nil {
		return res, fmt.Errorf("import %s: %w", src, err)
	}
	m, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: res.Config},
		Layers: []v1.Descriptor{res.Layer},
	})
	if err != nil {
		return res, err
	}
	md, err := lw.writeBlob(m)
	if err != nil {
		return res, fmt.Errorf("import %s: %w", src, err)
	}
	res.Manifest = v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(m)), Digest: md,
		Annotations: map[string]string{refNameAnnotation: opt.Tag}}
	if err := lw.tag(res.Manifest); err != nil {
		return res, fmt.Errorf("import %s: %w", src, err)
	}
	return res, nil
}

func (o ImportOptions) withDefaults() ImportOptions {
	if o.Tag == "" {
		o.Tag = "latest"
	}
	if o.Compression == "" {
		o.Compression = Gzip
	}
	if o.Platform.OS == "" {
		o.Platform = HostPlatform()
	}
	if o.Epoch != nil {
		t := o.Epoch.UTC().Truncate(time.Second)
		o.Epoch = &t
	}
	return o
}

// imageConfig is the config of an imported image (image-spec config.md).
func imageConfig(opt ImportOptions, diffID v1.Hash, created time.Time) *v1.ConfigFile {
	c := v1.Time{Time: created.UTC()}
	return &v1.ConfigFile{
		Architecture: opt.Platform.Architecture, OS: opt.Platform.OS, Variant: opt.Platform.Variant,
		Created: c,
		Config:  opt.Config,
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
		History: []v1.History{{Created: c, CreatedBy: "initos image import"}},
	}
}

// importLayer writes the layer blob of src and fills res; it returns the
// newest mtime of the entries.
func importLayer(ctx context.Context, src string, lw *layoutWriter, opt ImportOptions, res *ImportResult) (time.Time, error) {
	bw, err := lw.newLayerBlob(opt.Compression, opt.Level)
	if err != nil {
		return time.Time{}, err
	}
	defer bw.abort()
	e := newEmitter(ctx, bw, opt)
	if err := readSource(src, e); err != nil {
		return time.Time{}, err
	}
	if err := e.close(); err != nil {
		return time.Time{}, err
	}
	if res.Layer, res.DiffID, err = bw.commit(); err != nil {
		return time.Time{}, err
	}
	res.Entries, res.Bytes = e.entries, e.bytes
	return e.newest, nil
}

// readSource feeds the entries of the directory or tar src to e.
func readSource(src string, e *emitter) error {
	if src == "-" {
		return readTarSource(os.Stdin, -1, e)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return readDirSource(strings.TrimSuffix(src, "/")+"/", e)
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	return readTarSource(f, fi.Size(), e)
}

// ParseCompression parses a --compress value.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case Gzip, Zstd, Uncompressed:
		return c, nil
	case "":
		return Gzip, nil
	}
	return "", fmt.Errorf("unknown compression %q: want gzip, zstd or none", s)
}
