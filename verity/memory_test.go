package verity

import (
	"runtime"
	"testing"
)

// zeroReader is an endless source of zero bytes.
type zeroReader struct{}

func (zeroReader) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

// discard accepts writes.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// TestMemoryFlat: Format allocates per worker, not per byte of input: the
// bound is the workers' buffers plus the leaf digests (size/16384).
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 512 MiB")
	}
	const size = 512 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Format(zeroReader{}, size, discard{}, 0, Params{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	limit := uint64(runtime.GOMAXPROCS(0))*(defaultReadSize+1<<20) + size/16384 + 1<<20
	if got > limit {
		t.Errorf("Format(%d bytes) allocated %d bytes, want at most %d", size, got, limit)
	}
}
