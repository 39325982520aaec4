package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// errTooLarge is returned when a block inflates beyond its limit.
var errTooLarge = errors.New("decompressed size exceeds the block size")

// decoder decompresses one block: at most limit bytes, appended to
// dst[:0]. A decoder is used by one goroutine at a time.
type decoder interface {
	decompress(dst, src []byte, limit int) ([]byte, error)
}

func newDecoder(c Compressor, blockSize int) (decoder, error) {
	switch c {
	case Zstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(max(blockSize, metaSize))),
			zstd.WithDecoderMaxWindow(uint64(max(blockSize, zstd.MinWindowSize))),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return nil, err
		}
		return zstdDecoder{d}, nil
	case Gzip:
		return gzipDecoder{}, nil
	case XZ:
		return xzDecoder{dictMax: max(blockSize, metaSize)}, nil
	case LZ4:
		return lz4Decoder{}, nil
	}
	return nil, fmt.Errorf("compressor %v is not supported", c)
}

type zstdDecoder struct{ d *zstd.Decoder }

func (z zstdDecoder) decompress(dst, src []byte, limit int) ([]byte, error) {
	if cap(dst) < limit {
		dst = make([]byte, 0, limit)
	}
	out, err := z.d.DecodeAll(src, dst[:0:limit])
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, errTooLarge
	}
	return out, nil
}

type gzipDecoder struct{}

func (gzipDecoder) decompress(dst, src []byte, limit int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return readLimited(dst, r, limit)
}

// readLimited reads r to its end into dst[:0], failing past limit bytes.
func readLimited(dst []byte, r io.Reader, limit int) ([]byte, error) {
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

type lz4Decoder struct{}

func (lz4Decoder) decompress(dst, src []byte, limit int) ([]byte, error) {
	if cap(dst) < limit {
		dst = make([]byte, limit)
	}
	n, err := lz4.UncompressBlock(src, dst[:limit])
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

// xzDecoder reads xz blocks whose dictionary is at most dictMax, the
// image's block size: the kernel preallocates that much, and the xz
// reader would allocate whatever a stream asks for.
type xzDecoder struct{ dictMax int }

func (x xzDecoder) decompress(dst, src []byte, limit int) ([]byte, error) {
	if err := checkXZ(src, x.dictMax); err != nil {
		return nil, err
	}
	r, err := xz.ReaderConfig{DictCap: 4096, SingleStream: true}.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return readLimited(dst, r, limit)
}
