package squashfs

import (
	"fmt"
	"slices"

	"github.com/klauspost/compress/zlib"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// gzipEncoder writes zlib streams (squashfs "gzip" is zlib, RFC 1950) with
// klauspost's deflate, reusing one writer.
type gzipEncoder struct {
	w   *zlib.Writer
	out appendWriter
}

func newGzipEncoder(level int) (*gzipEncoder, error) {
	g := &gzipEncoder{}
	w, err := zlib.NewWriterLevel(&g.out, level)
	if err != nil {
		return nil, fmt.Errorf("squashfs: gzip encoder: %w", err)
	}
	g.w = w
	return g, nil
}

func (g *gzipEncoder) compress(dst, src []byte) ([]byte, error) {
	g.out.b = dst
	g.w.Reset(&g.out)
	if _, err := g.w.Write(src); err != nil {
		return nil, err
	}
	if err := g.w.Close(); err != nil {
		return nil, err
	}
	return g.out.b, nil
}

// xzEncoder writes one xz stream per block: LZMA2 only (no BCJ), a CRC32
// check (the only check squashfs allows) and a dictionary of the block
// size, which is what the kernel preallocates when it reads the image.
// ulikunitz/xz's hash-table match finder is used at every level: its
// binary-tree finder takes minutes per MiB and compresses worse.
type xzEncoder struct {
	cfg xz.WriterConfig
	out appendWriter
}

func newXZEncoder(blockSize int) *xzEncoder {
	return &xzEncoder{cfg: xz.WriterConfig{
		DictCap: max(blockSize, metaSize), CheckSum: xz.CRC32, Matcher: lzma.HashTable4,
	}}
}

func (x *xzEncoder) compress(dst, src []byte) ([]byte, error) {
	x.out.b = dst
	w, err := x.cfg.NewWriter(&x.out)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return x.out.b, nil
}

// lz4Encoder writes raw LZ4 blocks (no frame), as the kernel's
// LZ4_decompress_safe reads them; level > 0 selects the HC compressor.
type lz4Encoder struct {
	level int
	c     lz4.Compressor
	hc    lz4.CompressorHC
}

func newLZ4Encoder(level int) *lz4Encoder {
	e := &lz4Encoder{level: level}
	if level > 0 {
		e.hc.Level = lz4.CompressionLevel(1 << (8 + min(level, 9)))
	}
	return e
}

func (l *lz4Encoder) compress(dst, src []byte) ([]byte, error) {
	n := lz4.CompressBlockBound(len(src))
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	var m int
	var err error
	if l.level > 0 {
		m, err = l.hc.CompressBlock(src, dst[start:])
	} else {
		m, err = l.c.CompressBlock(src, dst[start:])
	}
	if err != nil {
		return nil, err
	}
	if m == 0 { // incompressible: the caller stores the block raw
		return append(dst[:start], src...), nil
	}
	return dst[:start+m], nil
}
