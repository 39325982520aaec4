package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"initos/squashfs"
	"initos/verity"
)

// decompressedTar returns the tar stream in br, decompressed when it
// starts with a gzip or zstd magic number.
func decompressedTar(br *bufio.Reader) (io.Reader, error) {
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return br, nil
}

// sqfsJSON is the --json form of a built image.
type sqfsJSON struct {
	Image          string    `json:"image"`
	Compressor     string    `json:"compressor"`
	Level          int       `json:"level"`
	BlockSize      int       `json:"block_size"`
	Size           int64     `json:"size"`
	BytesUsed      int64     `json:"bytes_used"`
	Inodes         uint32    `json:"inodes"`
	Fragments      uint32    `json:"fragments"`
	InputBytes     int64     `json:"input_bytes"`
	DataBytes      int64     `json:"data_bytes"`
	DuplicateBytes int64     `json:"duplicate_bytes"`
	SkippedXattrs  int       `json:"skipped_xattrs"`
	BufferBytes    int64     `json:"buffer_bytes"`
	Verity         *treeJSON `json:"verity,omitempty"`
}

func sqfsJSONOf(path string, r *squashfs.Result) sqfsJSON {
	j := sqfsJSON{Image: path, Compressor: r.Compressor.String(), Level: r.Level, BlockSize: r.BlockSize,
		Size: r.Size, BytesUsed: r.BytesUsed, Inodes: r.Inodes, Fragments: r.Fragments, InputBytes: r.InputBytes,
		DataBytes: r.DataBytes, DuplicateBytes: r.DuplicateBytes, SkippedXattrs: r.SkippedXattrs, BufferBytes: r.BufferBytes}
	if r.Verity != nil {
		t := treeJSONOf(r.Verity)
		j.Verity = &t
	}
	return j
}

// treeJSONOf is the --json form of a verity tree (as `verity format`).
func treeJSONOf(r *verity.Result) treeJSON {
	return treeJSON{r.UUID.String(), r.HashType, r.DataBlocks, r.DataBlockSize, r.HashBlocks, r.HashBlockSize,
		r.Hash, r.SaltHex(), r.RootHashHex(), r.Superblock, r.HashOffset, r.HashStartBlock, r.HashEnd()}
}

// printBuild reports a built image, then its verity tree the way `verity
// format` does, with the hash offset.
func printBuild(w io.Writer, path string, r *squashfs.Result, asJSON bool) error {
	j := sqfsJSONOf(path, r)
	if asJSON {
		return writeJSON(w, j)
	}
	fmt.Fprintf(w, "Image:           \t%s\n", path)
	fmt.Fprintf(w, "Compression:     \t%s level %d, block size %d\n", j.Compressor, j.Level, j.BlockSize)
	fmt.Fprintf(w, "Size:            \t%d bytes (bytes used %d)\n", r.Size, r.BytesUsed)
	fmt.Fprintf(w, "Inodes:          \t%d\n", r.Inodes)
	fmt.Fprintf(w, "Fragments:       \t%d\n", r.Fragments)
	fmt.Fprintf(w, "Input:           \t%d bytes (%d of them duplicates, stored once)\n", r.InputBytes, r.DuplicateBytes)
	if r.SkippedXattrs > 0 {
		fmt.Fprintf(w, "Skipped xattrs:  \t%d (namespaces squashfs cannot hold)\n", r.SkippedXattrs)
	}
	if r.Verity == nil {
		return nil
	}
	if err := printTree(w, path, r.Verity, true, false); err != nil {
		return err
	}
	fmt.Fprintf(w, "Hash offset:     \t%d\n", r.Verity.HashOffset)
	return nil
}
