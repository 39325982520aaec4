package verity

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
)

// TestFormatProgress: progress counts every data byte once, in order.
func TestFormatProgress(t *testing.T) {
	const size = 40<<20 + 4096
	data := bytes.NewReader(make([]byte, size))
	var calls []int64
	r, err := FormatContext(context.Background(), data, size, newMemFile(size/64), 0, Params{}, func(done int64) { calls = append(calls, done) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) < 2 || calls[len(calls)-1] != r.DataSize() {
		t.Fatalf("progress calls = %v, want several ending at %d", calls, r.DataSize())
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] <= calls[i-1] {
			t.Errorf("progress went from %d to %d", calls[i-1], calls[i])
		}
	}
	var vcalls int64
	if err := r.VerifyContext(context.Background(), data, bytes.NewReader(newMemFileFrom(t, data, r)), func(done int64) { vcalls = done }); err != nil {
		t.Fatal(err)
	}
	if vcalls != r.DataSize() {
		t.Errorf("VerifyContext progress ended at %d, want %d", vcalls, r.DataSize())
	}
}

func newMemFileFrom(t *testing.T, data io.ReaderAt, r *Result) []byte {
	t.Helper()
	h := newMemFile(int(r.HashEnd()))
	if _, err := Format(data, r.DataSize(), h, 0, r.Params()); err != nil {
		t.Fatal(err)
	}
	return h.b
}

// TestFormatCancel: a cancelled Format stops early with the context's
// cause and writes no superblock.
func TestFormatCancel(t *testing.T) {
	const size = 64 << 20
	cause := errors.New("interrupt")
	ctx, cancel := context.WithCancelCause(context.Background())
	hash := newMemFile(size / 64)
	var last int64
	_, err := FormatContext(ctx, bytes.NewReader(make([]byte, size)), size, hash, 0, Params{}, func(done int64) {
		last = done
		cancel(cause)
	})
	if !errors.Is(err, cause) {
		t.Fatalf("FormatContext(cancelled) = %v, want %v", err, cause)
	}
	if last >= size {
		t.Errorf("FormatContext hashed all %d bytes after cancellation", last)
	}
	if !bytes.Equal(hash.b[:SuperblockSize], make([]byte, SuperblockSize)) {
		t.Error("a cancelled FormatContext wrote the superblock")
	}
	r, _ := NewResult(Params{}, size/4096, 0, make([]byte, 32))
	if err := r.VerifyContext(ctx, bytes.NewReader(make([]byte, size)), bytes.NewReader(hash.b), nil); !errors.Is(err, cause) {
		t.Errorf("VerifyContext(cancelled) = %v, want %v", err, cause)
	}
}

// syncLog records the order of tree writes, superblock write and syncs.
type syncLog struct {
	mu     sync.Mutex
	events []string
	m      *memFile
}

func (s *syncLog) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := "tree"
	if off == 0 {
		ev = "superblock"
	}
	if n := len(s.events); n == 0 || s.events[n-1] != ev {
		s.events = append(s.events, ev)
	}
	return s.m.WriteAt(p, off)
}

func (s *syncLog) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "sync")
	return nil
}

// TestFormatSyncOrder: the tree is synced before the superblock is
// written, and the superblock after (as veritysetup does).
func TestFormatSyncOrder(t *testing.T) {
	const size = 8 << 20
	l := &syncLog{m: newMemFile(size / 64)}
	if _, err := Format(bytes.NewReader(make([]byte, size)), size, l, 0, Params{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"tree", "sync", "superblock", "sync"}
	if got := l.events; !slices.Equal(got, want) {
		t.Errorf("Format wrote %v, want %v", got, want)
	}
}
