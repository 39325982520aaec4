package kmod

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModuleSize bounds a decompressed module (the largest Debian modules
// are a few tens of megabytes), so a corrupt file cannot exhaust memory.
const maxModuleSize = 512 << 20

// compression returns the compression of a module file from its name:
// "" (plain .ko), "xz", "zst" or "gz".
func compression(path string) string {
	for _, c := range []string{"xz", "zst", "gz"} {
		if strings.HasSuffix(path, ".ko."+c) {
			return c
		}
	}
	return ""
}

// decompress returns the ELF image of a compressed module read from r;
// kind is a value returned by compression.
func decompress(kind string, r io.Reader) ([]byte, error) {
	var zr io.Reader
	switch kind {
	case "xz":
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		zr = x
	case "zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxModuleSize))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer z.Close()
		zr = z
	case "gz":
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr = g
	default:
		return nil, fmt.Errorf("unknown module compression %q", kind)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(zr, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	if n > maxModuleSize {
		return nil, fmt.Errorf("%s: decompressed module larger than %d bytes", kind, maxModuleSize)
	}
	return buf.Bytes(), nil
}
