package squashfs

import (
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Compressor is a squashfs compressor id, as stored in the superblock.
type Compressor uint16

// The compressors of squashfs 4.0. The writer supports Gzip, XZ, LZ4 and
// Zstd; the reader the same four (LZO and LZMA images are refused: no
// maintained pure-Go LZO exists and LZMA1 is deprecated).
const (
	Gzip Compressor = 1 // zlib streams (RFC 1950), named "gzip" by squashfs
	LZO  Compressor = 2
	LZMA Compressor = 3
	XZ   Compressor = 4
	LZ4  Compressor = 5
	Zstd Compressor = 6
)

var compressorNames = map[Compressor]string{
	Gzip: "gzip", LZO: "lzo", LZMA: "lzma", XZ: "xz", LZ4: "lz4", Zstd: "zstd",
}

// String returns the compressor's mksquashfs name ("zstd").
func (c Compressor) String() string {
	if n, ok := compressorNames[c]; ok {
		return n
	}
	return fmt.Sprintf("compressor(%d)", uint16(c))
}

// ParseCompressor returns the compressor named s ("zstd", "gzip", "xz",
// "lz4"), the names mksquashfs -comp takes.
func ParseCompressor(s string) (Compressor, error) {
	for c, n := range compressorNames {
		if n == strings.ToLower(s) && c.writable() {
			return c, nil
		}
	}
	return 0, fmt.Errorf("squashfs: unknown compressor %q (want zstd, gzip, xz or lz4)", s)
}

func (c Compressor) writable() bool { return c == Gzip || c == XZ || c == LZ4 || c == Zstd }

// DefaultLevel is the level used when Options.Level is 0: zstd 3 (the
// klauspost "default" encoder, mksquashfs -Xcompression-level 3's peer),
// gzip 9, xz 6, lz4 0 (fast, not HC).
func (c Compressor) DefaultLevel() int {
	switch c {
	case Zstd:
		return 3
	case Gzip:
		return 9
	case XZ:
		return 6
	}
	return 0
}

// levelRange is the accepted Options.Level range of c.
func (c Compressor) levelRange() (lo, hi int) {
	switch c {
	case Zstd:
		return 1, 22
	case Gzip:
		return 1, 9
	case XZ:
		return 0, 9
	}
	return 0, 9 // lz4: 0 fast, 1..9 high compression
}

// encoder compresses one block. compress appends the compressed form of
// src to dst; the caller stores src raw when that is not smaller. An
// encoder is used by one goroutine at a time.
type encoder interface {
	compress(dst, src []byte) ([]byte, error)
}

// newEncoder returns an encoder for c at level (already checked) for
// blocks of at most blockSize bytes.
func newEncoder(c Compressor, level, blockSize int) (encoder, error) {
	switch c {
	case Zstd:
		return newZstdEncoder(level, blockSize)
	case Gzip:
		return newGzipEncoder(level)
	case XZ:
		return newXZEncoder(blockSize), nil
	case LZ4:
		return newLZ4Encoder(level), nil
	}
	return nil, fmt.Errorf("squashfs: cannot write %v images", c)
}

// options returns the compressor options block written after the
// superblock (format.adoc "Compression Options"), or nil for none.
func compressorOptions(c Compressor, level, blockSize int) []byte {
	switch c {
	case Zstd:
		return le.AppendUint32(nil, uint32(level))
	case Gzip:
		b := le.AppendUint32(nil, uint32(level))
		b = le.AppendUint16(b, 15) // window bits
		return le.AppendUint16(b, 0)
	case XZ:
		b := le.AppendUint32(nil, uint32(max(blockSize, metaSize))) // dictionary size, as newXZEncoder
		return le.AppendUint32(b, 0)                                // no BCJ filters
	case LZ4:
		b := le.AppendUint32(nil, 1) // LZ4_LEGACY stream format version
		hc := uint32(0)
		if level > 0 {
			hc = 1
		}
		return le.AppendUint32(b, hc)
	}
	return nil
}

// zstdEncoder wraps a klauspost encoder in single-call mode: each block is
// one frame with its content size (single segment), so the kernel's
// decoder, whose window is the block size, accepts it.
type zstdEncoder struct{ e *zstd.Encoder }

func newZstdEncoder(level, blockSize int) (*zstdEncoder, error) {
	window := max(blockSize, zstd.MinWindowSize)
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithSingleSegment(true),
		zstd.WithWindowSize(window),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("squashfs: zstd encoder: %w", err)
	}
	return &zstdEncoder{e}, nil
}

func (z *zstdEncoder) compress(dst, src []byte) ([]byte, error) {
	return z.e.EncodeAll(src, dst), nil
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}
