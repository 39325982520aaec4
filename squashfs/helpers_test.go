package squashfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tnode is one entry of a test tree, in the form the tests compare.
type tnode struct {
	Path         string
	Mode         fs.FileMode
	UID, GID     uint32
	Mtime        int64
	Data         string // regular file content
	Target       string // symlink target
	Link         string // hard link to this path (input only)
	Nlink        uint32 // non-directories, as read back
	Major, Minor uint32
	Xattrs       map[string]string
}

// memFile is an in-memory image: WriterAt, ReaderAt and Truncate.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) Truncate(n int64) error {
	m.b = m.b[:n]
	return nil
}

// pattern returns n bytes: kind "rand" (incompressible), "text"
// (compressible), "zero".
func pattern(kind string, n int, seed uint64) string {
	b := make([]byte, n)
	switch kind {
	case "rand":
		rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	case "text":
		words := []string{"squashfs ", "verity ", "kernel ", "module ", "initos ", "block\n"}
		r := rand.New(rand.NewPCG(seed, 1))
		for i := 0; i < n; {
			i += copy(b[i:], words[r.IntN(len(words))])
		}
	}
	return string(b)
}

// sampleTree is a tree with every inode type, file sizes around the block
// size bs, duplicates, sparse files, hard links, xattrs and odd names.
// withDevices adds block/char devices, fifos and sockets (root only on a
// host).
func sampleTree(bs int, withDevices bool) []tnode {
	t0 := int64(1700000000)
	n := []tnode{
		{Path: ".", Mode: fs.ModeDir | 0o755, Mtime: t0},
		{Path: "empty", Mode: 0o644, Mtime: t0 + 1},
		{Path: "one", Mode: 0o600, UID: 1000, GID: 1000, Mtime: t0 + 2, Data: "x"},
		{Path: "text", Mode: 0o644, Mtime: t0, Data: pattern("text", 3*bs+1234, 1)},
		{Path: "rand", Mode: 0o755, Mtime: t0, Data: pattern("rand", 2*bs+77, 2)},
		{Path: "exact", Mode: 0o644, Mtime: t0, Data: pattern("text", bs, 3)},
		{Path: "under", Mode: 0o644, Mtime: t0, Data: pattern("rand", bs-1, 4)},
		{Path: "sparse", Mode: 0o644, Mtime: t0, Data: pattern("text", bs, 5) + pattern("zero", 3*bs, 0) + pattern("text", 99, 6)},
		{Path: "zeros", Mode: 0o644, Mtime: t0, Data: pattern("zero", 2*bs+5, 0)},
		{Path: "dup/text-copy", Mode: 0o644, Mtime: t0, Data: pattern("text", 3*bs+1234, 1)},
		{Path: "dup/one-copy", Mode: 0o644, Mtime: t0, Data: "x"},
		{Path: "dup/same-blocks-other-tail", Mode: 0o644, Mtime: t0, Data: pattern("text", 3*bs+1234, 1)[:3*bs] + "tail"},
		{Path: "dup", Mode: fs.ModeDir | 0o750, UID: 7, GID: 8, Mtime: t0 + 5},
		{Path: "setuid", Mode: 0o755 | fs.ModeSetuid | fs.ModeSetgid, Mtime: t0, Data: "#!/bin/sh\n"},
		{Path: "sticky", Mode: fs.ModeDir | 0o777 | fs.ModeSticky, Mtime: t0},
		{Path: "link-to-text", Mode: fs.ModeSymlink | 0o777, Mtime: t0, Target: "text"},
		{Path: "dangling", Mode: fs.ModeSymlink | 0o777, Mtime: t0, Target: "/nowhere/at/all"},
		{Path: "hard1", Mode: 0o644, Mtime: t0, Data: "shared inode\n"},
		{Path: "sub/hard2", Link: "hard1"},
		{Path: "sub/deeper/hard3", Link: "hard1"},
		{Path: "sub", Mode: fs.ModeDir | 0o755, Mtime: t0},
		{Path: "sub/deeper", Mode: fs.ModeDir | 0o700, Mtime: t0 + 9},
		{Path: "xattrs", Mode: 0o644, Mtime: t0, Data: "has attributes",
			Xattrs: map[string]string{"user.mime": "text/plain", "user.empty": "", "trusted.t": "v", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		{Path: "xdir", Mode: fs.ModeDir | 0o755, Mtime: t0, Xattrs: map[string]string{"user.dir": "yes"}},
		{Path: "xdir/same-attrs", Mode: 0o644, Mtime: t0, Data: "a", Xattrs: map[string]string{"user.mime": "text/plain"}},
		{Path: "xdir/same-attrs-2", Mode: 0o644, Mtime: t0, Data: "b", Xattrs: map[string]string{"user.mime": "text/plain"}},
		{Path: "xdir/xlink", Mode: fs.ModeSymlink | 0o777, Mtime: t0, Target: "same-attrs", Xattrs: map[string]string{"trusted.l": "1"}},
		{Path: "ünïcödé ✓ 名前", Mode: 0o644, Mtime: t0, Data: "utf-8 name"},
		{Path: strings.Repeat("n", 255), Mode: 0o644, Mtime: t0, Data: "long name"},
		{Path: "space name", Mode: 0o644, Mtime: t0, Data: "s"},
		{Path: "old", Mode: 0o644, Mtime: 0, Data: "epoch zero"},
	}
	if withDevices {
		n = append(n,
			tnode{Path: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Mtime: t0, Major: 1, Minor: 3},
			tnode{Path: "dev/sda", Mode: fs.ModeDevice | 0o660, GID: 6, Mtime: t0, Major: 8, Minor: 0},
			tnode{Path: "dev/big", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Mtime: t0, Major: 4095, Minor: 1048575},
			tnode{Path: "dev/fifo", Mode: fs.ModeNamedPipe | 0o644, Mtime: t0},
			tnode{Path: "dev/sock", Mode: fs.ModeSocket | 0o755, Mtime: t0, Xattrs: map[string]string{"trusted.s": "1"}},
			tnode{Path: "dev/hardfifo", Link: "dev/fifo"},
			tnode{Path: "dev", Mode: fs.ModeDir | 0o755, Mtime: t0},
		)
	}
	return n
}

// bigDir is a directory of n files (a 10k-entry directory needs an index).
func bigDir(n int) []tnode {
	out := []tnode{{Path: ".", Mode: fs.ModeDir | 0o755}, {Path: "big", Mode: fs.ModeDir | 0o755}}
	for i := range n {
		out = append(out, tnode{Path: fmt.Sprintf("big/entry-with-a-longish-name-%06d", i), Mode: 0o644, Data: fmt.Sprint(i % 7)})
	}
	return out
}

// deepTree nests depth directories.
func deepTree(depth int) []tnode {
	out := []tnode{{Path: ".", Mode: fs.ModeDir | 0o755}}
	p := ""
	for i := range depth {
		p += fmt.Sprintf("d%d/", i)
		out = append(out, tnode{Path: p + "f", Mode: 0o644, Data: p})
	}
	return out
}

// entryOf converts a tnode to a writer Entry.
func entryOf(n tnode) Entry {
	return Entry{Path: n.Path, Mode: n.Mode, UID: n.UID, GID: n.GID, ModTime: time.Unix(n.Mtime, 0),
		Size: int64(len(n.Data)), Linkname: n.Target, HardLink: n.Link, Major: n.Major, Minor: n.Minor, Xattrs: n.Xattrs}
}

// buildImage writes nodes (in the given order) with opts into memory.
func buildImage(t testing.TB, nodes []tnode, opts Options) ([]byte, *Result) {
	t.Helper()
	m := &memFile{}
	w, err := NewWriter(context.Background(), m, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, n := range nodes {
		if err := w.Add(entryOf(n), strings.NewReader(n.Data)); err != nil {
			w.Abort()
			t.Fatalf("Add(%s): %v", n.Path, err)
		}
	}
	res, err := w.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if int64(len(m.b)) != res.Size && opts.Verity == nil {
		t.Fatalf("image is %d bytes, Result.Size %d", len(m.b), res.Size)
	}
	return m.b, res
}

// expected resolves hard links and implicit directories of an input tree
// into what reading the image must give.
func expected(nodes []tnode) map[string]tnode {
	want := map[string]tnode{}
	links := map[string]uint32{}
	for _, n := range nodes {
		if n.Link != "" {
			links[n.Link]++
		}
	}
	for _, n := range nodes {
		if n.Link != "" {
			n2 := want[n.Link]
			n2.Path = n.Path
			want[n.Path] = n2
		} else {
			if n.Mode&fs.ModeDir == 0 {
				n.Nlink = 1 + links[n.Path]
			}
			want[n.Path] = n
		}
		for d := parentDir(n.Path); d != "."; d = parentDir(d) {
			if _, ok := want[d]; !ok {
				want[d] = tnode{Path: d, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	if _, ok := want["."]; !ok {
		want["."] = tnode{Path: ".", Mode: fs.ModeDir | 0o755}
	}
	return want
}

func parentDir(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// readBack walks an image with Reader and returns its tree.
func readBack(t testing.TB, img []byte) map[string]tnode {
	t.Helper()
	r, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	got := map[string]tnode{}
	err = r.Walk(func(p string, in *Inode) error {
		n := tnode{Path: p, Mode: in.Mode, UID: in.UID, GID: in.GID, Mtime: in.ModTime.Unix(), Target: in.Target, Major: in.Major, Minor: in.Minor}
		if !in.IsDir() {
			n.Nlink = in.Nlink
		}
		if in.basicType() == typeFile {
			c, err := r.Content(in)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(c)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			n.Data = string(b)
		}
		x, err := r.Xattrs(in)
		if err != nil {
			return err
		}
		n.Xattrs = x
		got[p] = n
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return got
}

// compareTrees reports differences; directories' mtimes and modes of
// implicit directories are compared as given in want.
func compareTrees(t testing.TB, want, got map[string]tnode) {
	t.Helper()
	for _, m := range []map[string]tnode{want, got} {
		for p, n := range m {
			if len(n.Xattrs) == 0 {
				n.Xattrs = nil
			}
			n.Link = ""
			m[p] = n
		}
	}
	if diff := cmp.Diff(want, got, cmp.Transformer("short", shortData)); diff != "" {
		t.Errorf("image tree differs (-want +got):\n%s", diff)
	}
}

// shortData keeps diffs readable: content is shown by length and hash.
func shortData(n tnode) tnode {
	if len(n.Data) > 64 {
		n.Data = fmt.Sprintf("<%d bytes %x>", len(n.Data), fnv(n.Data))
	}
	return n
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// paths returns the sorted keys of a tree.
func paths(m map[string]tnode) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
