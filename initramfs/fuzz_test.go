package initramfs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader reads arbitrary bytes as an initramfs image (segments,
// compression detection, NUL padding): errors are fine, panics and
// endless loops are not.
func FuzzReader(f *testing.F) {
	var a Archive
	a.AddFile("init", 0o755, []byte("#!/bin/sh\n"))
	a.AddSymlink("bin/sh", "busybox")
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	for _, c := range []Compression{None, Gzip, Zstd, ZstdBest} {
		var buf bytes.Buffer
		if err := a.WriteTo(&buf, c); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(append(append([]byte(nil), buf.Bytes()...), 0, 0, 0, 0, 0x1f, 0x8b))
	}
	f.Add([]byte("\xfd7zXZ\x00"))
	seeds, _ := filepath.Glob("../cpio/testdata/*.cpio")
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			_, err := r.Next()
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			if i > len(data) {
				t.Fatalf("%d entries from %d bytes", i, len(data))
			}
		}
	})
}
