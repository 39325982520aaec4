package squashfs_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"initos/squashfs"
)

// Build an image from a stream of entries, then read a file back.
func Example() {
	img, err := os.Create(filepath.Join(os.TempDir(), "example.sqfs"))
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(img.Name())
	defer img.Close()

	w, err := squashfs.NewWriter(context.Background(), img, squashfs.Options{Epoch: time.Unix(1700000000, 0)})
	if err != nil {
		log.Fatal(err)
	}
	hello := "hello, squashfs\n"
	for _, e := range []struct {
		entry   squashfs.Entry
		content string
	}{
		{squashfs.Entry{Path: "etc", Mode: fs.ModeDir | 0o755}, ""},
		{squashfs.Entry{Path: "etc/motd", Mode: 0o644, Size: int64(len(hello))}, hello},
		{squashfs.Entry{Path: "motd", Mode: fs.ModeSymlink | 0o777, Linkname: "etc/motd"}, ""},
	} {
		if err := w.Add(e.entry, strings.NewReader(e.content)); err != nil {
			log.Fatal(err)
		}
	}
	res, err := w.Finish()
	if err != nil {
		log.Fatal(err)
	}

	r, err := squashfs.NewReader(img, res.Size)
	if err != nil {
		log.Fatal(err)
	}
	f, err := r.Open("motd") // follows the symlink
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	fmt.Printf("%d inodes, %v, %q", res.Inodes, r.Compressor(), b)
	// Output: 4 inodes, zstd, "hello, squashfs\n"
}
