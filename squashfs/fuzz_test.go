package squashfs

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the Reader: opening, walking every
// directory, reading every file (capped), its xattrs and symlink targets,
// and path lookups must end with an error or success, never a panic, a
// hang or a large allocation. Seeds: mksquashfs images in testdata and
// our own, one per compressor.
func FuzzReader(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.sqfs")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	small := []tnode{
		{Path: "dir/a", Mode: 0o644, Data: "hello\n"},
		{Path: "b", Mode: 0o644, Data: pattern("text", MinBlockSize+900, 1), Xattrs: map[string]string{"user.k": "v"}},
		{Path: "hard", Link: "b"},
		{Path: "link", Mode: fs.ModeSymlink | 0o777, Target: "dir/a"},
		{Path: "fifo", Mode: fs.ModeNamedPipe | 0o644},
		{Path: "cdev", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 1, Minor: 3},
	}
	for _, c := range []Compressor{Zstd, Gzip, XZ, LZ4} {
		img, res := buildImage(f, small, Options{Compressor: c, BlockSize: MinBlockSize})
		f.Add(img[:res.BytesUsed])
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		r, err := NewReader(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		// Bounds on the work per input (a hostile image may legitimately
		// hold a million-entry directory or an exabyte sparse file).
		n, budget := 0, int64(4<<20)
		r.Walk(func(p string, in *Inode) error {
			if n++; n > 2000 || budget <= 0 {
				return io.EOF
			}
			r.Xattrs(in)
			if in.Mode.IsRegular() {
				if c, err := r.Content(in); err == nil {
					k, _ := io.Copy(io.Discard, io.LimitReader(c, budget))
					budget -= k + 1
				}
			}
			return nil
		})
		fs.ReadDir(r, ".")
		r.ReadLink("link")
		if f, err := r.Open("dir/a"); err == nil {
			io.Copy(io.Discard, io.LimitReader(f, 1<<16))
			f.Close()
		}
	})
}
