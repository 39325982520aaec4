package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"initos/image"
)

func init() {
	describe("image import", "TAR|DIR|- oci:DIR[:TAG] [--tag NAME] [--compress gzip|zstd|none] [--level N] [--platform OS/ARCH]",
		"Makes a one-layer OCI image of a root filesystem and writes it into the OCI image layout DIR "+
			"(created if needed; other images in it are kept, one with the same tag is replaced). The root is a "+
			"directory, a tar file (plain, gzip, zstd, xz or bzip2, e.g. mmdebstrap's output) or - for a tar on "+
			"standard input. The output is reproducible: entries sorted by name (a tar keeps its order), "+
			"numeric owners, whole-second mtimes clamped to SOURCE_DATE_EPOCH when it is set (which is also "+
			"the creation time; otherwise the newest mtime is), the same bytes on every run. The tag is TAG or "+
			"--tag (default latest).")
}

// importJSON is the --json output of `image import`.
type importJSON struct {
	Layout   string `json:"layout"`
	Tag      string `json:"tag"`
	Manifest string `json:"manifest"`
	Config   string `json:"config"`
	Layer    string `json:"layer"`
	LayerMT  string `json:"layer_media_type"`
	Size     int64  `json:"layer_size"`
	DiffID   string `json:"diff_id"`
	Entries  int64  `json:"entries"`
	Bytes    int64  `json:"bytes"`
}

func imageImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("image import", stdout, stderr)
	tag := fs.String("tag", "", "tag of the image in the layout (org.opencontainers.image.ref.name; default latest)")
	compress := fs.String("compress", "gzip", "layer compression: gzip, zstd or none")
	level := fs.Int("level", 0, "compression level (gzip 1-9, zstd 1-4; 0: the default)")
	platform := fs.String("platform", "", "platform of the image, os/arch[/variant] (default: this host)")
	asJSON := fs.Bool("json", false, "print JSON")
	prog := fs.Bool("progress", true, "draw a progress bar on stderr when it is a terminal")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	opt := image.ImportOptions{Level: *level}
	dir, ok := strings.CutPrefix(pos[1], "oci:")
	if !ok || dir == "" {
		return usageError(fs, "destination %q: want oci:DIR[:TAG]", pos[1])
	}
	dir, opt.Tag, _ = strings.Cut(dir, ":")
	if *tag != "" && opt.Tag != "" && *tag != opt.Tag {
		return usageError(fs, "--tag %s and the destination's tag %s differ", *tag, opt.Tag)
	}
	if *tag != "" {
		opt.Tag = *tag
	}
	if opt.Compression, err = image.ParseCompression(*compress); err != nil {
		return usageError(fs, "--compress: %v", err)
	}
	if opt.Platform, err = image.ParsePlatform(*platform); err != nil {
		return usageError(fs, "--platform: %v", err)
	}
	if t, ok, err := sourceDateEpoch(); err != nil {
		return err
	} else if ok {
		opt.Epoch = &t
	}
	bar := &lazyBar{w: stderr, enabled: *prog, desc: "import"}
	opt.Progress = bar.update
	res, err := image.Import(ctx, pos[0], dir, opt)
	bar.finish()
	if err != nil {
		return interrupted(ctx, "image import", "the layout is as it was", err)
	}
	tagName := res.Manifest.Annotations["org.opencontainers.image.ref.name"]
	if *asJSON {
		return writeJSON(stdout, importJSON{dir, tagName, res.Manifest.Digest.String(), res.Config.String(),
			res.Layer.Digest.String(), string(res.Layer.MediaType), res.Layer.Size, res.DiffID.String(), res.Entries, res.Bytes})
	}
	fmt.Fprintf(stdout, "oci:%s:%s %s\n", dir, tagName, res.Manifest.Digest)
	fmt.Fprintf(stdout, "%d entries, %d bytes of files; layer %s, %d bytes (%s)\n", res.Entries, res.Bytes, res.Layer.Digest, res.Layer.Size, res.Layer.MediaType)
	return nil
}
