package squashfs

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestAddErrors: bad entries are refused with a message naming the
// problem, and the writer stays usable.
func TestAddErrors(t *testing.T) {
	w, err := NewWriter(context.Background(), &memFile{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Add(Entry{Path: "file", Mode: 0o644, Size: 1}, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(Entry{Path: "dir", Mode: fs.ModeDir | 0o755}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		e    Entry
		want string
	}{
		{Entry{Path: "a/../b", Mode: 0o644}, `"a/../b": ".." is not allowed`},
		{Entry{Path: strings.Repeat("x", 257), Mode: 0o644}, "name of 257 bytes exceeds 256"},
		{Entry{Path: "nul\x00", Mode: 0o644}, "contains a NUL byte"},
		{Entry{Path: "s", Mode: fs.ModeSymlink}, "symlink target of 0 bytes (want 1 to 4096)"},
		{Entry{Path: "s", Mode: fs.ModeSymlink, Linkname: strings.Repeat("t", 4097)}, "symlink target of 4097 bytes"},
		{Entry{Path: "d", Mode: fs.ModeDevice, Major: 4096}, "device 4096:0 out of range"},
		{Entry{Path: "file/x", Mode: 0o644}, "add file/x: file is not a directory"},
		{Entry{Path: "h", HardLink: "missing"}, "hard link target missing: file does not exist"},
		{Entry{Path: "h", HardLink: "dir"}, "hard link target dir is a directory"},
		{Entry{Path: "/", Mode: 0o644}, "the root must be a directory"},
		{Entry{Path: "f", Mode: 0o644, Size: -1}, "negative size -1"},
		{Entry{Path: "i", Mode: fs.ModeIrregular}, "unsupported file type"},
	} {
		err := w.Add(c.e, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(%q) = %v, want an error containing %q", c.e.Path, err, c.want)
		}
	}
	if err := w.Remove("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove(missing) = %v, want fs.ErrNotExist", err)
	}
	if err := w.Remove("/"); err == nil || !strings.Contains(err.Error(), "the root cannot be removed") {
		t.Errorf("Remove(/) = %v, want the root refused", err)
	}
	if err := w.Add(Entry{Path: "ok", Mode: 0o644, Size: 2}, strings.NewReader("ok")); err != nil {
		t.Errorf("Add after refused entries = %v, want the writer usable", err)
	}
}

// TestContentErrors: content shorter or longer than Size fails the image
// (the error is sticky, and Finish reports it).
func TestContentErrors(t *testing.T) {
	for _, c := range []struct {
		size    int64
		content string
		want    string
	}{
		{5, "abc", "content is 3 bytes, the entry says 5"},
		{2, "abc", "content is more than 2 bytes, the entry says 2"},
		{200000, strings.Repeat("a", 150000), "content is 150000 bytes, the entry says 200000"},
	} {
		w, err := NewWriter(context.Background(), &memFile{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Add(Entry{Path: "f", Mode: 0o644, Size: c.size}, strings.NewReader(c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Add(size %d, %d bytes) = %v, want %q", c.size, len(c.content), err, c.want)
		}
		if err2 := w.Add(Entry{Path: "g", Mode: fs.ModeDir}, nil); err2 == nil {
			t.Errorf("Add after a content error succeeded, want the error again")
		}
		if _, err := w.Finish(); err == nil {
			t.Errorf("Finish after a content error succeeded")
		}
	}
}

// TestOptionErrors: invalid options are refused by NewWriter.
func TestOptionErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{BlockSize: 5000}, "block size 5000 is not a power of two from 4096 to 1048576"},
		{Options{BlockSize: 2 << 20}, "block size 2097152"},
		{Options{Level: 23}, "zstd level 23 out of range 1..22"},
		{Options{Compressor: Gzip, Level: 10}, "gzip level 10 out of range 1..9"},
		{Options{Compressor: LZO}, "cannot write lzo images"},
		{Options{Compressor: 77}, "cannot write compressor(77) images"},
	} {
		if _, err := NewWriter(context.Background(), &memFile{}, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewWriter(%+v) = %v, want %q", c.o, err, c.want)
		}
	}
}

// TestCancel: a cancelled context stops Add and Finish.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := NewWriter(ctx, &memFile{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Add(Entry{Path: "f", Mode: 0o644, Size: 1}, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Add after cancel = %v, want context.Canceled", err)
	}
	if _, err := w.Finish(); err == nil {
		t.Error("Finish after cancel succeeded")
	}
	if _, err := w.Finish(); err == nil || !strings.Contains(err.Error(), "Finish called twice") {
		t.Errorf("second Finish = %v, want refused", err)
	}
}

// TestReplace: a later entry replaces an earlier one; a directory over a
// directory keeps its children; Remove drops a subtree.
func TestReplace(t *testing.T) {
	nodes := []tnode{
		{Path: "a", Mode: 0o644, Data: "first"},
		{Path: "a", Mode: 0o600, Data: "second"},
		{Path: "d/x", Mode: 0o644, Data: "x"},
		{Path: "d", Mode: fs.ModeDir | 0o700, UID: 5},
		{Path: "gone/y", Mode: 0o644, Data: "y"},
	}
	m := &memFile{}
	w, err := NewWriter(context.Background(), m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := w.Add(entryOf(n), strings.NewReader(n.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Remove("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	want := expected(nodes[1:4])
	compareTrees(t, want, readBack(t, m.b))
}
