package squashfs

import (
	"fmt"
	"io/fs"
	"testing"
)

// TestRoundTrip writes trees with every compressor and several block
// sizes and reads them back with Reader.
func TestRoundTrip(t *testing.T) {
	for _, c := range []Compressor{Zstd, Gzip, XZ, LZ4} {
		for _, bs := range []int{MinBlockSize, DefaultBlockSize, MaxBlockSize} {
			if c == XZ && bs == MaxBlockSize {
				continue // ulikunitz/xz compresses 1 MiB blocks at ~1.5 MB/s: TestXZLargeBlocks
			}
			t.Run(fmt.Sprintf("%v/%d", c, bs), func(t *testing.T) {
				nodes := sampleTree(bs, true)
				img, res := buildImage(t, nodes, Options{Compressor: c, BlockSize: bs})
				compareTrees(t, expected(nodes), readBack(t, img))
				if res.DuplicateBytes == 0 {
					t.Errorf("Result.DuplicateBytes = 0, want the duplicated files counted")
				}
			})
		}
	}
}

// TestRoundTripShapes covers a 10k-entry directory (directory index) and a
// deep tree.
func TestRoundTripShapes(t *testing.T) {
	for name, nodes := range map[string][]tnode{"bigdir": bigDir(10000), "deep": deepTree(200)} {
		t.Run(name, func(t *testing.T) {
			img, _ := buildImage(t, nodes, Options{})
			compareTrees(t, expected(nodes), readBack(t, img))
		})
	}
}

// TestXZLargeBlocks checks 1 MiB xz blocks on a small tree (ulikunitz/xz
// is slow at that dictionary size).
func TestXZLargeBlocks(t *testing.T) {
	nodes := []tnode{{Path: ".", Mode: 0o755 | fs.ModeDir}, {Path: "f", Mode: 0o644, Data: pattern("text", MaxBlockSize+100, 1)}, {Path: "g", Mode: 0o644, Data: "tail"}}
	img, _ := buildImage(t, nodes, Options{Compressor: XZ, BlockSize: MaxBlockSize})
	compareTrees(t, expected(nodes), readBack(t, img))
}
