package verity

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestMapSourceView(t *testing.T) {
	want := make([]byte, 3*4096)
	for i := range want {
		want[i] = byte(i * 13)
	}
	path := filepath.Join(t.TempDir(), "data")
	writeFile(t, path, want)
	src := mapSourceFor(openFile(t, path), int64(len(want)))
	if src == nil {
		t.Fatal("mapSourceFor(*os.File) = nil")
	}
	defer src.close()
	for _, off := range []int64{0, 100, 4096, 5000} {
		got, release, err := src.view(make([]byte, 2000), off)
		if err != nil || !bytes.Equal(got, want[off:off+2000]) {
			t.Errorf("view(2000, %d) = %v, want file bytes", off, err)
		}
		release()
		if got, _, _ := src.view(make([]byte, 2000), off); !bytes.Equal(got, want[off:off+2000]) {
			t.Errorf("view(2000, %d) after release differs", off)
		}
	}
	if _, _, err := src.view(make([]byte, 10), int64(len(want))-5); err == nil {
		t.Errorf("view beyond the mapping = nil error")
	}
	if mapSourceFor(bytes.NewReader(want), int64(len(want))) != nil {
		t.Errorf("mapSourceFor(bytes.Reader) != nil, want nil")
	}
}

// TestMapFault: a mapped file truncated under the hasher gives an error,
// not a crash.
func TestMapFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	writeFile(t, path, make([]byte, 16*4096))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewResult(Params{}, 16, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := mapSourceFor(f, 16*4096)
	defer src.close()
	w := r.newLeafWorker(src)
	buf, release, err := src.view(w.rbuf[:16*4096], 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		debug.SetPanicOnFault(true)
		done <- w.hashBlocks(w.out, buf, 0)
	}()
	if err := <-done; err == nil {
		t.Errorf("hashBlocks(truncated mapping) = nil, want a fault error")
	}
}

// TestMapSourceWatermark: released windows are dropped in batches once
// every window below them is released, and a window far ahead of a
// stalled one is dropped at once.
func TestMapSourceWatermark(t *testing.T) {
	const win = 2 << 20
	size := int64(maxLag + 4*dropBatch)
	path := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	src := mapSourceFor(f, size).(*mapSource)
	defer src.close()
	defer f.Close()
	release := func(i int64) {
		t.Helper()
		_, rel, err := src.view(make([]byte, win), i*win)
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	// Windows 1..16 first: nothing below them is released yet.
	for i := int64(1); i <= dropBatch/win; i++ {
		release(i)
	}
	if src.low != 0 || src.dropped != 0 {
		t.Fatalf("after windows 1..16: low %d dropped %d, want 0 0", src.low, src.dropped)
	}
	release(0) // the first 17 windows are now contiguous: one drop
	if want := int64(dropBatch + win); src.low != want || src.dropped != want {
		t.Errorf("after window 0: low %d dropped %d, want %d %d", src.low, src.dropped, want, want)
	}
	stalled := src.low / win
	far := stalled + maxLag/win + 1
	release(far)
	if src.dropped != dropBatch+win || len(src.done) != 1 {
		t.Errorf("window past maxLag changed the watermark: dropped %d, %d pending", src.dropped, len(src.done))
	}
	for i := stalled; i < size/win; i++ {
		if i != far {
			release(i)
		}
	}
	if src.low != size || src.dropped != size || len(src.done) != 0 {
		t.Errorf("after every window: low %d dropped %d pending %d, want %d %d 0", src.low, src.dropped, len(src.done), size, size)
	}
}
