package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzApplyLayer applies arbitrary tar streams to a scratch directory (any
// filesystem): the applier must not panic or write outside the root.
func FuzzApplyLayer(f *testing.F) {
	f.Add(tarBytes(f, []ent{
		{name: "./", typ: tar.TypeDir}, {name: "a/b", body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "../../.."},
		{name: "l/escape", body: "x"}, {name: "h", typ: tar.TypeLink, link: "a/b"}, {name: "a/.wh.b"},
		{name: "a/.wh..wh..opq"}, {name: "f", typ: tar.TypeFifo}, {name: "x", xattrs: map[string]string{"user.k": "v"}},
	}))
	f.Add(tarBytes(f, []ent{{name: "../x", body: "y"}}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		root := filepath.Join(dir, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		lim := Limits{MaxEntries: 1000, MaxFileSize: 1 << 20, Workers: 2}.withDefaults()
		a := newApplier(context.Background(), fd, true, &budget{lim: lim})
		a.apply(bytes.NewReader(b))
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) != 1 || ents[0].Name() != "root" {
			t.Fatalf("apply wrote outside its root: %v %v", ents, err)
		}
	})
}
