package initramfs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"initos/internal/testenv"
)

// runStdin runs an oracle with stdin and returns its stdout.
func runStdin(t *testing.T, stdin []byte, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, name), args...)
	cmd.Stdin, cmd.Dir = bytes.NewReader(stdin), dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.Bytes())
	}
	return out
}

func write(t *testing.T, a *Archive, c Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := a.WriteTo(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readNames reads r to the end and returns the entry names.
func readNames(t *testing.T, r *Reader) []string {
	t.Helper()
	var names []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestGNUCpioListsOurs has GNU cpio list and extract our archive.
func TestGNUCpioListsOurs(t *testing.T) {
	data := write(t, sampleArchive(t), None)
	out := string(runStdin(t, data, "", "cpio", "--quiet", "-itv"))
	for _, want := range []string{
		"lrwxrwxrwx   1 root     root            7 Nov 14  2023 bin -> usr/bin\n",
		"crw-------   1 root     root       5,   1 Nov 14  2023 dev/console\n",
		"-rwsr-xr-x   1 root     root            2 Nov 14  2023 init\n",
		"drwxr-x---   2 root     root            0 Nov 14  2023 usr\n",
		"-rw-r--r--   1 root     root            3 Nov 14  2023 usr/lib/modules/x.ko\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cpio -itv of our archive lacks %q; got:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	runStdin(t, data, dir, "cpio", "--quiet", "-id", "--no-absolute-filenames")
	got, err := os.ReadFile(filepath.Join(dir, "etc/host"))
	if err != nil || string(got) != "from the host" {
		t.Errorf("cpio -id extracted etc/host = %q, %v; want %q", got, err, "from the host")
	}
}

// TestReadGNUCpio reads what `find . | cpio -o -H newc` writes, and
// checks it against our own archive of the same tree.
func TestReadGNUCpio(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"a/b/c.txt": "ccc", "a/d": "", "e": strings.Repeat("e", 5000)} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a/b/c.txt", filepath.Join(dir, "link"))
	list := []byte("a\na/b\na/b/c.txt\na/d\ne\nlink\n")
	gnu := runStdin(t, list, dir, "cpio", "--quiet", "-o", "-H", "newc")

	var a Archive
	for _, name := range []string{"a/b/c.txt", "a/d", "e"} {
		if err := a.AddHostFile(name, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	a.AddSymlink("link", "a/b/c.txt")
	ignore := func(items []item) []item {
		for i := range items {
			items[i].Ino, items[i].MTime = 0, 0
		}
		return items
	}
	want := ignore(readItems(t, write(t, &a, None)))
	got := ignore(readItemsOpt(t, gnu, false))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GNU cpio archive read back diff (-ours +gnu):\n%s", diff)
	}
}

// TestDecompressOracles checks zstd and gzip decompress our output.
func TestDecompressOracles(t *testing.T) {
	plain := write(t, sampleArchive(t), None)
	for _, tt := range []struct {
		c    Compression
		tool string
		args []string
	}{
		{Zstd, "unzstd", []string{"-c"}},
		{Zstd, "zstd", []string{"-d", "-c"}},
		{Gzip, "gzip", []string{"-d", "-c"}},
	} {
		got := runStdin(t, write(t, sampleArchive(t), tt.c), "", tt.tool, tt.args...)
		if !bytes.Equal(got, plain) {
			t.Errorf("%s %q of our %v archive: %d bytes differing from the plain archive (%d bytes)", tt.tool, tt.args, tt.c, len(got), len(plain))
		}
	}
}

// TestReaderSegments reads an image made of a plain, a gzip and a zstd
// segment, with NUL padding, like the kernel.
func TestReaderSegments(t *testing.T) {
	one := func(name string) *Archive {
		var a Archive
		a.AddFile(name, 0o644, []byte(name))
		return &a
	}
	var img bytes.Buffer
	img.Write(write(t, one("early/microcode"), None))
	img.Write(make([]byte, 512))
	img.Write(write(t, one("gz/file"), Gzip))
	img.Write(write(t, one("zst/file"), Zstd))
	r := NewReader(&img)
	names := readNames(t, r)
	want := []string{"early", "early/microcode", "gz", "gz/file", "zst", "zst/file"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("names diff (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Compression{None, Gzip, Zstd}, r.Segments()); diff != "" {
		t.Errorf("Segments() diff (-want +got):\n%s", diff)
	}
}

func TestReaderErrors(t *testing.T) {
	plain := write(t, sampleArchive(t), None)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Write([]byte("junk after the trailer"))
	zw.Close()
	zst, _ := zstd.NewWriter(nil)
	tests := []struct {
		name string
		in   []byte
		want string
		is   error
	}{
		{"xz", []byte("\xfd7zXZ\x00\x00"), "read initramfs segment 1: unsupported initramfs compression: xz", ErrUnsupported},
		{"lz4", []byte("\x02\x21\x4c\x18...."), "unsupported initramfs compression: lz4", ErrUnsupported},
		{"garbage", []byte("hello world"), `read initramfs segment 1: malformed cpio archive: unknown data starting "hello "`, nil},
		{"junk in gzip", gz.Bytes(), `read initramfs segment 1 (gzip): malformed cpio archive: unknown data starting "junk a" after an archive's trailer`, nil},
		{"truncated zstd", zst.EncodeAll(plain, nil)[:100], "read initramfs segment 1 (zstd)", nil},
		{"odc", []byte("070707" + strings.Repeat("0", 200)), `read initramfs segment 1 (none): malformed cpio archive: entry at offset 0: bad magic "070707"`, nil},
	}
	for _, tt := range tests {
		r := NewReader(bytes.NewReader(tt.in))
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
			t.Errorf("%s: Next error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestReadDebianInitrd lists the Debian kernel's own initrd and compares
// the names with `unzstd | cpio -it`.
func TestReadDebianInitrd(t *testing.T) {
	imgs, _ := filepath.Glob("/boot/initrd.img-*")
	if len(imgs) == 0 {
		testenv.Missing(t, "no /boot/initrd.img-* (made by the initramfs-tools hook of linux-image-amd64)")
	}
	img := imgs[len(imgs)-1]
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		testenv.Missing(t, "%s is not a single zstd segment (bookworm's initramfs-tools default, COMPRESS=zstd)", img)
	}
	plain := runStdin(t, data, "", "unzstd", "-c")
	want := strings.Fields(string(runStdin(t, plain, "", "cpio", "--quiet", "-it")))
	got := readNames(t, NewReader(bytes.NewReader(data)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names of %s diff (-cpio +ours):\n%s", img, diff)
	}
}
