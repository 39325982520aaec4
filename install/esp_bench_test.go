package install

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
)

// BenchmarkESPWrite compares two ways of putting a 100 MiB file on a
// 500 MiB FAT32 ESP with go-diskfs: its File.Write in 1 MiB chunks (the
// FAT is rewritten on each allocation) and the installer's whole-file
// allocation plus writes into the cluster ranges.
func BenchmarkESPWrite(b *testing.B) {
	const fileSize, espSize = 100 << 20, 500 << 20
	dir := b.TempDir()
	data := make([]byte, fileSize)
	rand.NewChaCha8([32]byte{1}).Read(data)
	src := filepath.Join(dir, "src")
	os.WriteFile(src, data, 0o644)
	f, err := os.Create(filepath.Join(dir, "esp.img"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	f.Truncate(espSize)
	for _, tc := range []struct {
		name string
		put  func() error
	}{
		{"chunked-Write", func() error {
			fsys, err := openFAT(f, 0, espSize, 512, true, "X")
			if err != nil {
				return err
			}
			h, err := fsys.OpenFile("/big", os.O_CREATE|os.O_RDWR)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(h.(*fat12.File), bytes.NewReader(data), make([]byte, 1<<20))
			return err
		}},
		{"whole-file", func() error {
			return formatESP(f, 0, espSize, 512, "X", []ESPFile{{Path: "/big", Src: src, Size: fileSize}})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(fileSize)
			for b.Loop() {
				if err := tc.put(); err != nil {
					b.Fatal(err)
				}
				f.Sync()
			}
		})
	}
}
