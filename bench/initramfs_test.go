package bench

import (
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"initos/initramfs"
	"initos/internal/testenv"
	"initos/kmod"
)

// initramfsModules are the modules the InitOS initrd loads.
var initramfsModules = []string{"dm-verity", "dm-crypt", "btrfs", "squashfs", "vfat", "efivarfs",
	"overlay", "virtio_blk", "virtio_pci", "loop", "xts"}

// BenchmarkInitramfsPack packs a tree into a zstd-compressed newc archive
// with initramfs.Archive and with `find . | cpio -o -H newc | zstd` (zstd
// level 3, one thread, like ours), in the same run. Trees: the modules of
// the InitOS initrd (resolved with kmod, ~6.5 MB) and the Debian kernel's
// kernel/fs module tree (~40 MB). The initos sub-benchmark reports
// x_cpio_zstd (speed ratio, >1 is faster) and size_vs_cpio_zstd.
func BenchmarkInitramfsPack(b *testing.B) {
	testenv.Tool(b, "cpio")
	testenv.Tool(b, "zstd")
	dir := initramfsModulesDir(b)
	trees := []struct{ name, root string }{
		{"initrd-modules", initramfsStageModules(b, dir)},
		{"kernel-fs", filepath.Join(dir, "kernel/fs")},
	}
	for _, tree := range trees {
		b.Run(tree.name, func(b *testing.B) {
			files, size := initramfsListTree(b, tree.root)
			var cRate, cSize float64
			b.Run("cpio+zstd", func(b *testing.B) {
				b.SetBytes(size)
				var out int64
				for b.Loop() {
					out = initramfsRunC(b, tree.root)
				}
				cRate, cSize = float64(size)*float64(b.N)/b.Elapsed().Seconds(), float64(out)
			})
			b.Run("initos", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(size)
				var cw countWriter
				for b.Loop() {
					cw = countWriter{}
					initramfsPackGo(b, tree.root, files, &cw)
				}
				rate := float64(size) * float64(b.N) / b.Elapsed().Seconds()
				if cRate > 0 {
					b.ReportMetric(rate/cRate, "x_cpio_zstd")
					b.ReportMetric(float64(cw.n)/cSize, "size_vs_cpio_zstd")
				}
			})
		})
	}
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// initramfsModulesDir finds the Debian kernel's module directory.
func initramfsModulesDir(b *testing.B) string {
	m, _ := filepath.Glob("/lib/modules/*/kernel/drivers/md/dm-verity.ko")
	if len(m) == 0 {
		b.Skip("no Debian kernel modules (linux-image-amd64)")
	}
	slices.Sort(m)
	return filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(m[len(m)-1]))))
}

// initramfsStageModules copies the initrd's modules into a temporary tree.
func initramfsStageModules(b *testing.B, dir string) string {
	ix, err := kmod.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	mods, err := ix.Resolve(initramfsModules...)
	if err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	for _, m := range mods {
		if m.Builtin {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, m.Path))
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(root, m.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// initramfsListTree returns the regular files under root and their total size.
func initramfsListTree(b *testing.B, root string) ([]string, int64) {
	var files []string
	var size int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files = append(files, rel)
		size += fi.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return files, size
}

// initramfsRunC runs the shell pipeline and returns the compressed size.
func initramfsRunC(b *testing.B, root string) int64 {
	cmd := exec.Command("sh", "-c", "find . | cpio --quiet -o -H newc | zstd -q -3 -T1 -c")
	cmd.Dir = root
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("find | cpio | zstd: %v", err)
	}
	return n
}

// initramfsPackGo packs files (relative to root) with initramfs.Archive.
func initramfsPackGo(b *testing.B, root string, files []string, w io.Writer) {
	a := &initramfs.Archive{ModTime: time.Unix(0, 0)}
	for _, f := range files {
		if err := a.AddHostFile(f, filepath.Join(root, f)); err != nil {
			b.Fatal(err)
		}
	}
	if err := a.WriteTo(w, initramfs.Zstd); err != nil {
		b.Fatal(err)
	}
}
