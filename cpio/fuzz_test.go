package cpio

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader reads arbitrary bytes as an archive: no panic, and whatever
// is read can be written back and read again identically.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.cpio")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range sample {
		h := e.Header
		h.Size = uint32(len(e.Data))
		w.WriteHeader(&h)
		io.WriteString(w, e.Data)
	}
	w.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readAll(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		w := NewWriter(&out)
		for _, e := range got {
			h := e.Header
			if err := w.WriteHeader(&h); err != nil {
				t.Fatalf("WriteHeader(%+v) of an entry read back: %v", h, err)
			}
			if h.Mode&TypeMask != TypeSymlink {
				if _, err := io.WriteString(w, e.Data); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := readAll(&out)
		if err != nil {
			t.Fatalf("re-read of a written archive: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("re-read %d entries, want %d", len(again), len(got))
		}
		for i := range got {
			g, a := got[i], again[i]
			g.Check, a.Check = 0, 0
			if g != a {
				t.Fatalf("entry %d: re-read %+v, want %+v", i, a, g)
			}
		}
	})
}
