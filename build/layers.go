package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// LayerInfo is a layer of the source image, as the manifest records it.
type LayerInfo struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// readLayers streams the layers of img, in order, through fn: each blob
// is hashed while read and checked against its digest once the tar is
// done (the rest of the blob is read past first).
func readLayers(ctx context.Context, img v1.Image, counter func(int), fn func(tr *tar.Reader) error) ([]LayerInfo, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("read the image's layers: %w", err)
	}
	var infos []LayerInfo
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := l.Digest()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		size, err := readLayer(l, d, counter, fn)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, d, err)
		}
		infos = append(infos, LayerInfo{Digest: d.String(), Size: size})
	}
	return infos, nil
}

// readLayer streams one layer; it returns the blob's size.
func readLayer(l v1.Layer, want v1.Hash, counter func(int), fn func(tr *tar.Reader) error) (int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return 0, fmt.Errorf("open blob: %w", err)
	}
	defer rc.Close()
	hr := &hashingReader{r: rc, h: sha256.New(), counter: counter}
	br := bufio.NewReaderSize(hr, 1<<20)
	ur, release, err := decompress(br)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := fn(tar.NewReader(ur)); err != nil {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, ur); err != nil {
		return 0, fmt.Errorf("read blob: %w", err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, fmt.Errorf("read blob: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(hr.h.Sum(nil)); want.Algorithm != "sha256" || got != want.String() {
		return 0, fmt.Errorf("blob digest %s, want %s: the layer is corrupt or was tampered with", got, want)
	}
	return hr.n, nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress sniffs the blob's compression: gzip, zstd or none.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return gz, func() { gz.Close() }, nil
	case bytes.HasPrefix(magic, zstdMagic):
		zd, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zd, zd.Close, nil
	}
	return br, func() {}, nil
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r       io.Reader
	h       hash.Hash
	n       int64
	counter func(int)
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if h.counter != nil {
		h.counter(n)
	}
	return n, err
}
