package verity

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// formatMem formats size bytes of seeded random data in memory.
func formatMem(t *testing.T, size int, p Params) (data []byte, hash *memFile, r *Result) {
	t.Helper()
	data = make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(size)})
	rng.Read(data)
	hash = newMemFile(size/2 + 1<<16)
	r, err := Format(bytes.NewReader(data), int64(size), hash, 0, p)
	if err != nil {
		t.Fatal(err)
	}
	hash.b = hash.b[:r.HashEnd()]
	return data, hash, r
}

func wantCorrupt(t *testing.T, err error, level int, block uint64) {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want *CorruptionError at level %d block %d", err, level, block)
	}
	if ce.Level != level || ce.Block != block {
		t.Errorf("Verify = level %d block %d (%v), want level %d block %d", ce.Level, ce.Block, err, level, block)
	}
}

func TestCorruptionLocated(t *testing.T) {
	configs := []Params{
		{HashBlockSize: 512, DataBlockSize: 512},
		{Hash: "sha1", HashBlockSize: 1024, DataBlockSize: 512, ChromeOS: true},
		{Hash: "sha512", HashBlockSize: 512, DataBlockSize: 1024, NoSalt: true},
		{},
	}
	for i, p := range configs {
		t.Run(fmt.Sprintf("%d-%s", i, p.Hash), func(t *testing.T) {
			t.Parallel()
			data, hash, r := formatMem(t, 600*int(max(p.DataBlockSize, 512))+77, p)
			if err := r.Verify(bytes.NewReader(data), bytes.NewReader(hash.b)); err != nil {
				t.Fatalf("Verify(intact) = %v", err)
			}
			for _, blk := range []uint64{0, r.DataBlocks / 2, r.DataBlocks - 1} {
				bad := bytes.Clone(data)
				bad[int64(blk)*int64(r.DataBlockSize)+5] ^= 1
				wantCorrupt(t, r.Verify(bytes.NewReader(bad), bytes.NewReader(hash.b)), DataLevel, blk)
			}
			for lvl, l := range r.Levels {
				for _, blk := range []uint64{0, l.Blocks - 1} {
					for _, at := range []int64{3, int64(r.HashBlockSize) - 1} {
						bad := bytes.Clone(hash.b)
						bad[int64(l.Start+blk)*int64(r.HashBlockSize)+at] ^= 0x80
						wantCorrupt(t, r.Verify(bytes.NewReader(data), bytes.NewReader(bad)), lvl, blk)
					}
				}
			}
		})
	}
}

func TestWrongRootHash(t *testing.T) {
	data, hash, r := formatMem(t, 300*4096, Params{})
	r.RootHash[0] ^= 1
	wantCorrupt(t, r.Verify(bytes.NewReader(data), bytes.NewReader(hash.b)), len(r.Levels)-1, 0)
}

func TestSingleBlockCorrupt(t *testing.T) {
	data, hash, r := formatMem(t, 4096+100, Params{})
	if len(r.Levels) != 0 || r.HashBlocks != 0 {
		t.Fatalf("Format(1 block) levels %v blocks %d, want none", r.Levels, r.HashBlocks)
	}
	data[100] ^= 1
	wantCorrupt(t, r.Verify(bytes.NewReader(data), bytes.NewReader(hash.b)), DataLevel, 0)
}

// TestPaddingSigned: a tree whose signer put garbage in an unused slot is
// still reported, as veritysetup does ("spare area is not zeroed").
func TestPaddingSigned(t *testing.T) {
	data, hash, r := formatMem(t, 5*4096, Params{NoSalt: true})
	leaf := int64(r.Levels[0].Start) * int64(r.HashBlockSize)
	hash.b[leaf+4000] = 1
	h := r.newHasher()
	h.sum(r.RootHash, hash.b[leaf:leaf+4096])
	wantCorrupt(t, r.Verify(bytes.NewReader(data), bytes.NewReader(hash.b)), 0, 0)
}

func TestShortHashDevice(t *testing.T) {
	data, hash, r := formatMem(t, 300*4096, Params{})
	err := r.Verify(bytes.NewReader(data), bytes.NewReader(hash.b[:len(hash.b)-1]))
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify(short hash) = %v, want an I/O error", err)
	}
}
