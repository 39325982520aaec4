package initramfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"initos/cpio"
)

// item is what a test expects of one entry.
type item struct {
	Name     string
	Mode     uint32
	Size     uint32
	Ino      uint32
	MTime    uint32
	Linkname string
	Rdev     [2]uint32
	Data     string
}

// readItems reads an image; for archives we wrote (ours), it also checks
// that no host metadata leaked into the headers.
func readItems(t *testing.T, data []byte) []item {
	return readItemsOpt(t, data, true)
}

func readItemsOpt(t *testing.T, data []byte, ours bool) []item {
	t.Helper()
	r := NewReader(bytes.NewReader(data))
	var out []item
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ours && (h.UID != 0 || h.GID != 0 || h.DevMajor != 0 || h.DevMinor != 0 || h.Check != 0) {
			t.Errorf("entry %s: uid %d gid %d dev %d:%d check %d, want all 0", h.Name, h.UID, h.GID, h.DevMajor, h.DevMinor, h.Check)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, item{h.Name, h.Mode, h.Size, h.Ino, h.MTime, h.Linkname, [2]uint32{h.RDevMajor, h.RDevMinor}, string(b)})
	}
}

// sampleArchive builds a small archive, adding entries in a scrambled order.
func sampleArchive(t *testing.T) *Archive {
	t.Helper()
	host := filepath.Join(t.TempDir(), "host")
	if err := os.WriteFile(host, []byte("from the host"), 0o640); err != nil {
		t.Fatal(err)
	}
	a := &Archive{ModTime: time.Unix(1700000000, 0)}
	a.AddFile("/usr/lib/modules/x.ko", 0o644, []byte("ELF"))
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	a.AddSymlink("bin", "usr/bin")
	a.AddDir("usr", 0o700)
	a.AddFile("init", 0o755|fs.ModeSetuid, []byte("#!"))
	if err := a.AddHostFile("etc/host", host); err != nil {
		t.Fatal(err)
	}
	a.AddDir("usr", 0o750) // a directory twice: last mode wins
	return a
}

func TestWriteRead(t *testing.T) {
	const mt = 1700000000
	want := []item{
		{"bin", cpio.TypeSymlink | 0o777, 7, 1, mt, "usr/bin", [2]uint32{}, ""},
		{"dev", cpio.TypeDir | 0o755, 0, 2, mt, "", [2]uint32{}, ""},
		{"dev/console", cpio.TypeChar | 0o600, 0, 3, mt, "", [2]uint32{5, 1}, ""},
		{"etc", cpio.TypeDir | 0o755, 0, 4, mt, "", [2]uint32{}, ""},
		{"etc/host", cpio.TypeReg | 0o640, 13, 5, mt, "", [2]uint32{}, "from the host"},
		{"init", cpio.TypeReg | 0o4755, 2, 6, mt, "", [2]uint32{}, "#!"},
		{"usr", cpio.TypeDir | 0o750, 0, 7, mt, "", [2]uint32{}, ""},
		{"usr/lib", cpio.TypeDir | 0o755, 0, 8, mt, "", [2]uint32{}, ""},
		{"usr/lib/modules", cpio.TypeDir | 0o755, 0, 9, mt, "", [2]uint32{}, ""},
		{"usr/lib/modules/x.ko", cpio.TypeReg | 0o644, 3, 10, mt, "", [2]uint32{}, "ELF"},
	}
	for _, c := range []Compression{None, Gzip, Zstd, ZstdBest} {
		var buf bytes.Buffer
		if err := sampleArchive(t).WriteTo(&buf, c); err != nil {
			t.Fatalf("WriteTo(%v): %v", c, err)
		}
		if diff := cmp.Diff(want, readItems(t, buf.Bytes())); diff != "" {
			t.Errorf("WriteTo(%v) read back diff (-want +got):\n%s", c, diff)
		}
	}
}

// TestDeterministic builds the same archive twice, from entries added in
// different orders, and compares the bytes.
func TestDeterministic(t *testing.T) {
	build := func(reverse bool) *Archive {
		a := &Archive{}
		names := []string{"a/b/c", "a/b/d", "z", "m/n"}
		if reverse {
			for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
				names[i], names[j] = names[j], names[i]
			}
		}
		for _, n := range names {
			a.AddFile(n, 0o644, []byte(strings.Repeat(n, 1000)))
		}
		return a
	}
	for _, c := range []Compression{None, Gzip, Zstd, ZstdBest} {
		var b1, b2 bytes.Buffer
		if err := build(false).WriteTo(&b1, c); err != nil {
			t.Fatal(err)
		}
		if err := build(true).WriteTo(&b2, c); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
			t.Errorf("WriteTo(%v) twice: outputs differ (%d and %d bytes)", c, b1.Len(), b2.Len())
		}
	}
}

func TestModTime(t *testing.T) {
	tests := []struct {
		env     string
		modTime time.Time
		want    uint32
		wantErr string
	}{
		{"", time.Time{}, 0, ""},
		{"1234567", time.Time{}, 1234567, ""},
		{"1234567", time.Unix(42, 0), 42, ""},
		{"soon", time.Time{}, 0, `SOURCE_DATE_EPOCH="soon": not a number of seconds`},
		{"-5", time.Time{}, 0, "outside newc's 32-bit range"},
		{"", time.Unix(1<<33, 0), 0, "outside newc's 32-bit range"},
	}
	for _, tt := range tests {
		t.Setenv("SOURCE_DATE_EPOCH", tt.env)
		a := &Archive{ModTime: tt.modTime}
		a.AddDir("d", 0o755)
		var buf bytes.Buffer
		err := a.WriteTo(&buf, None)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SOURCE_DATE_EPOCH=%q ModTime %v: WriteTo error = %v, want %q", tt.env, tt.modTime, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := readItems(t, buf.Bytes())[0].MTime; got != tt.want {
			t.Errorf("SOURCE_DATE_EPOCH=%q ModTime %v: mtime = %d, want %d", tt.env, tt.modTime, got, tt.want)
		}
	}
}

func TestAddErrors(t *testing.T) {
	tests := []struct {
		name string
		add  func(a *Archive)
		want string
	}{
		{"duplicate file", func(a *Archive) { a.AddFile("f", 0o644, nil); a.AddFile("/f", 0o644, nil) }, "add f: duplicate path"},
		{"dir over file", func(a *Archive) { a.AddFile("f", 0o644, nil); a.AddDir("f", 0o755) }, "add f: duplicate path"},
		{"file over dir", func(a *Archive) { a.AddDir("d", 0o755); a.AddSymlink("d", "x") }, "add d: duplicate path"},
		{"file over implied dir", func(a *Archive) { a.AddFile("d/x", 0o644, nil); a.AddFile("d", 0o644, nil) }, "add d: duplicate path"},
		{"under a file", func(a *Archive) { a.AddFile("f", 0o644, nil); a.AddFile("f/g", 0o644, nil) }, "add f/g: parent f is not a directory"},
		{"dotdot", func(a *Archive) { a.AddFile("a/../../etc/passwd", 0o644, nil) }, `add "a/../../etc/passwd": name contains ".."`},
		{"root", func(a *Archive) { a.AddDir("/", 0o755) }, `add "/": name is the root directory`},
		{"empty", func(a *Archive) { a.AddFile("", 0o644, nil) }, `add "": name is the root directory`},
		{"trailer", func(a *Archive) { a.AddFile("TRAILER!!!", 0o644, nil) }, "name is the cpio trailer's"},
		{"symlink target", func(a *Archive) { a.AddSymlink("l", "") }, "add symlink l: target length 0 out of range"},
		{"first error kept", func(a *Archive) { a.AddFile("", 0, nil); a.AddFile("f", 0, nil); a.AddFile("f", 0, nil) }, "name is the root directory"},
	}
	for _, tt := range tests {
		var a Archive
		tt.add(&a)
		var buf bytes.Buffer
		err := a.WriteTo(&buf, None)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: WriteTo error = %v, want one containing %q", tt.name, err, tt.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: WriteTo wrote %d bytes before failing", tt.name, buf.Len())
		}
	}
}

func TestAddHostFile(t *testing.T) {
	dir := t.TempDir()
	var a Archive
	if err := a.AddHostFile("x", filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddHostFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if err := a.AddHostFile("x", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("AddHostFile(directory) = %v, want not a regular file", err)
	}
	// The file is read by WriteTo: a file removed in between is an error.
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.AddHostFile("f", p); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := a.WriteTo(io.Discard, None); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteTo after the host file was removed = %v, want fs.ErrNotExist", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "initrd.img")
	if err := sampleArchive(t).WriteFile(p, Zstd); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readItems(t, data)); got != 10 {
		t.Errorf("WriteFile: read back %d entries, want 10", got)
	}
	// A failing build leaves the old file and no temporary file behind.
	var bad Archive
	bad.AddFile("", 0, nil)
	if err := bad.WriteFile(p, Zstd); err == nil {
		t.Fatal("WriteFile(bad archive) succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("after a failed WriteFile, directory holds %d files, want 1", len(entries))
	}
	if again, _ := os.ReadFile(p); !bytes.Equal(again, data) {
		t.Errorf("failed WriteFile modified %s", p)
	}
}

func TestCompressionString(t *testing.T) {
	for _, c := range []Compression{None, Gzip, Zstd, ZstdBest} {
		got, err := ParseCompression(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", c.String(), got, err, c)
		}
	}
	if _, err := ParseCompression("xz"); err == nil {
		t.Errorf("ParseCompression(xz) succeeded")
	}
	if got := Compression(9).String(); got != "Compression(9)" {
		t.Errorf("Compression(9).String() = %q", got)
	}
}
