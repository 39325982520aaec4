package cpio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestHeaderSize(t *testing.T) {
	if got := binary.Size(rawHeader{}); got != HeaderSize {
		t.Errorf("binary.Size(rawHeader{}) = %d, want %d", got, HeaderSize)
	}
}

// entry is a header with its data, for round trips.
type entry struct {
	Header
	Data string
}

// readAll reads every entry of an archive.
func readAll(r io.Reader) ([]entry, error) {
	cr := NewReader(r)
	var out []entry
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		data, err := io.ReadAll(cr)
		if err != nil {
			return out, err
		}
		out = append(out, entry{*h, string(data)})
	}
}

// write writes entries into a newc archive.
func write(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.Mode&TypeMask != TypeSymlink {
			h.Size = uint32(len(e.Data))
		}
		if err := w.WriteHeader(&h); err != nil {
			t.Fatal(err)
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
	return buf.Bytes()
}

var sample = []entry{
	{Header: Header{Name: "dev", Ino: 1, Mode: TypeDir | 0o755, NLink: 2, MTime: 1700000000}},
	{Header: Header{Name: "dev/console", Ino: 2, Mode: TypeChar | 0o600, NLink: 1, RDevMajor: 5, RDevMinor: 1}},
	{Header: Header{Name: "init", Ino: 3, Mode: TypeReg | 0o755, NLink: 1, UID: 1, GID: 2}, Data: "#!/bin/sh\necho hi\n"},
	{Header: Header{Name: "odd", Ino: 4, Mode: TypeReg | 0o4644, NLink: 1}, Data: "abcde"},
	{Header: Header{Name: "empty", Ino: 5, Mode: TypeReg | 0o644, NLink: 1}},
	{Header: Header{Name: "bin/sh", Ino: 6, Mode: TypeSymlink | 0o777, NLink: 1, Linkname: "busybox"}},
	{Header: Header{Name: "./a-name-of-odd-length", Ino: 7, Mode: TypeReg | 0o600, NLink: 1}, Data: "x"},
}

func TestRoundTrip(t *testing.T) {
	data := write(t, sample)
	if len(data)%4 != 0 {
		t.Errorf("archive size %d not a multiple of 4", len(data))
	}
	got, err := readAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]entry(nil), sample...)
	for i := range want {
		want[i].Size = uint32(len(want[i].Data))
	}
	want[5].Size = uint32(len("busybox"))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read back diff (-want +got):\n%s", diff)
	}
}

// TestReadGNU reads archives GNU cpio wrote (testdata/gnu-*.cpio: newc and
// the crc variant of the same tree).
func TestReadGNU(t *testing.T) {
	want := []entry{
		{Header: Header{Name: ".", Mode: TypeDir | 0o755}},
		{Header: Header{Name: "dir", Mode: TypeDir | 0o755}},
		{Header: Header{Name: "dir/hello.txt", Mode: TypeReg | 0o644, Size: 6}, Data: "hello\n"},
		{Header: Header{Name: "dir/sub", Mode: TypeDir | 0o750}},
		{Header: Header{Name: "dir/sub/three", Mode: TypeReg | 0o644, Size: 3}, Data: "abc"},
		{Header: Header{Name: "empty", Mode: TypeReg | 0o644}},
		{Header: Header{Name: "link", Mode: TypeSymlink | 0o777, Size: 13, Linkname: "dir/hello.txt"}},
	}
	for _, name := range []string{"testdata/gnu-newc.cpio", "testdata/gnu-crc.cpio"} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(f)
		f.Close()
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		ignore := cmpopts.IgnoreFields(Header{}, "Ino", "NLink", "MTime", "DevMajor", "DevMinor", "Check", "UID", "GID")
		if diff := cmp.Diff(want, got, ignore); diff != "" {
			t.Errorf("read %s diff (-want +got):\n%s", name, diff)
		}
	}
}

// hdr formats a raw newc header with the given fields overridden.
func hdr(magic string, mode, size, nameSize, check uint32, name string) string {
	s := fmt.Sprintf("%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", magic,
		1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameSize, check)
	s += name
	for len(s)%4 != 0 {
		s += "\x00"
	}
	return s
}

func entryBytes(name string, mode uint32, data string) string {
	s := hdr(Magic, mode, uint32(len(data)), uint32(len(name)+1), 0, name+"\x00") + data
	for len(s)%4 != 0 {
		s += "\x00"
	}
	return s
}

var trailer = entryBytes(Trailer, 0, "")

func TestReaderErrors(t *testing.T) {
	good := entryBytes("file", TypeReg|0o644, "data!")
	tests := []struct {
		name, in, want string
	}{
		{"empty input", "", "archive ends at offset 0 without TRAILER!!!"},
		{"no trailer", good, "archive ends at offset 124 without TRAILER!!!"},
		{"odc magic", "070707" + strings.Repeat("0", 200), `entry at offset 0: bad magic "070707"`},
		{"binary magic", "\xc7\x71" + strings.Repeat("0", 200), `entry at offset 0: bad magic "\xc7q0000"`},
		{"short header", good[:50], "truncated at offset 50: header of entry at offset 0"},
		{"non-hex field", strings.Replace(good, "000081A4", "000081G4", 1), `entry at offset 0: field c_mode: "000081G4" is not 8 hex digits`},
		{"signed field", strings.Replace(good, "000081A4", "-00081A4", 1), `field c_mode: "-00081A4" is not 8 hex digits`},
		{"namesize 0", hdr(Magic, TypeReg, 0, 0, 0, ""), "c_namesize 0 out of range [2, 4096]"},
		{"namesize 1", hdr(Magic, TypeReg, 0, 1, 0, "\x00"), "c_namesize 1 out of range [2, 4096]"},
		{"namesize huge", hdr(Magic, TypeReg, 0, 0xFFFFFFFF, 0, ""), "c_namesize 4294967295 out of range [2, 4096]"},
		{"name truncated", hdr(Magic, TypeReg, 0, 100, 0, "abc"), "truncated at offset 116: name of entry at offset 0"},
		{"name without NUL", hdr(Magic, TypeReg, 0, 4, 0, "abcd") + trailer, `name "abcd" not NUL-terminated at c_namesize 4`},
		{"name with inner NUL", hdr(Magic, TypeReg, 0, 4, 0, "a\x00c\x00") + trailer, `name "a\x00c\x00" not NUL-terminated`},
		{"absolute name", entryBytes("/etc/passwd", TypeReg, "") + trailer, `entry "/etc/passwd" at offset 0: absolute name`},
		{"dotdot name", entryBytes("a/../../etc", TypeReg, "") + trailer, `entry "a/../../etc" at offset 0: name contains ".."`},
		{"dotdot only", entryBytes("..", TypeDir, "") + trailer, `name contains ".."`},
		{"data truncated", good[:120], `truncated at offset 120: data of "file" (1 bytes missing)`},
		{"huge data", hdr(Magic, TypeReg, 0xFFFFFFF0, 5, 0, "file\x00") + "abc", `data of "file" (4294967277 bytes missing)`},
		{"padding truncated", good[:len(good)-1], `truncated at offset 123: padding after "file"`},
		{"symlink empty", entryBytes("l", TypeSymlink|0o777, "") + trailer, `symlink "l": target size 0 out of range [1, 4095]`},
		{"symlink huge", hdr(Magic, TypeSymlink, 1<<20, 2, 0, "l\x00"), `symlink "l": target size 1048576 out of range [1, 4095]`},
		{"symlink NUL", entryBytes("l", TypeSymlink|0o777, "a\x00b") + trailer, `symlink "l": target contains NUL`},
		{"bad checksum", hdr(MagicCRC, TypeReg, 2, 2, 7, "f\x00") + "ab\x00\x00" + trailer, `entry "f": checksum 000000c3, header says 00000007`},
	}
	for _, tt := range tests {
		_, err := readAll(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrFormat) {
			t.Errorf("%s: read error = %v, want ErrFormat containing %q", tt.name, err, tt.want)
		}
	}
}

func TestReaderCRC(t *testing.T) {
	in := hdr(MagicCRC, TypeReg|0o644, 2, 2, 'a'+'b', "f\x00") + "ab\x00\x00" + trailer
	got, err := readAll(strings.NewReader(in))
	if err != nil || len(got) != 1 || got[0].Data != "ab" {
		t.Errorf("read crc archive = %+v, %v; want one entry f with data ab", got, err)
	}
}

// TestReaderStopsAtTrailer checks that bytes after the trailer stay unread,
// for callers handling concatenated archives.
func TestReaderStopsAtTrailer(t *testing.T) {
	arch := write(t, sample[:1])
	r := strings.NewReader(string(arch) + "NEXT")
	cr := NewReader(r)
	for {
		if _, err := cr.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "NEXT" || cr.Offset() != int64(len(arch)) {
		t.Errorf("after trailer: rest %q, Offset() = %d; want %q, %d", rest, cr.Offset(), "NEXT", len(arch))
	}
	if _, err := cr.Next(); err != io.EOF {
		t.Errorf("Next() after trailer = %v, want io.EOF", err)
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"too long", func(w *Writer) error {
			w.WriteHeader(&Header{Name: "f", Mode: TypeReg, Size: 1})
			_, err := w.Write([]byte("ab"))
			return err
		}, `write cpio data "f": cpio: write beyond the entry size`},
		{"too short", func(w *Writer) error {
			w.WriteHeader(&Header{Name: "f", Mode: TypeReg, Size: 3})
			w.Write([]byte("a"))
			return w.Close()
		}, `write cpio data "f": 2 bytes missing`},
		{"empty name", func(w *Writer) error { return w.WriteHeader(&Header{Mode: TypeReg}) }, `write cpio header "": empty name`},
		{"trailer name", func(w *Writer) error { return w.WriteHeader(&Header{Name: Trailer}) }, "name is the trailer's"},
		{"absolute", func(w *Writer) error { return w.WriteHeader(&Header{Name: "/init"}) }, "absolute name"},
		{"dotdot", func(w *Writer) error { return w.WriteHeader(&Header{Name: "../x"}) }, `name contains ".."`},
		{"long name", func(w *Writer) error { return w.WriteHeader(&Header{Name: strings.Repeat("a", 4096)}) }, "name longer than 4095 bytes"},
		{"NUL name", func(w *Writer) error { return w.WriteHeader(&Header{Name: "a\x00"}) }, "name contains NUL"},
		{"empty symlink", func(w *Writer) error { return w.WriteHeader(&Header{Name: "l", Mode: TypeSymlink}) }, "symlink target"},
		{"after close", func(w *Writer) error { w.Close(); return w.WriteHeader(&Header{Name: "f"}) }, "writer closed"},
		{"sink fails", func(w *Writer) error {
			w.w = failWriter{}
			return w.WriteHeader(&Header{Name: "f"})
		}, `write cpio header "f": disk full`},
	}
	for _, tt := range tests {
		err := tt.do(NewWriter(io.Discard))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFileMode(t *testing.T) {
	tests := []struct {
		mode uint32
		want string
	}{
		{TypeDir | 0o755, "drwxr-xr-x"},
		{TypeReg | 0o4755, "urwxr-xr-x"},
		{TypeSymlink | 0o777, "Lrwxrwxrwx"},
		{TypeChar | 0o600, "Dcrw-------"},
		{TypeBlock | 0o660, "Drw-rw----"},
		{TypeFifo | 0o644, "prw-r--r--"},
		{TypeSocket | 0o755, "Srwxr-xr-x"},
		{0o1777 | TypeDir, "dtrwxrwxrwx"},
		{0o2755 | TypeReg, "grwxr-xr-x"},
		{0o070000 | 0o644, "?rw-r--r--"},
	}
	for _, tt := range tests {
		h := Header{Mode: tt.mode}
		if got := h.FileMode().String(); got != tt.want {
			t.Errorf("Header{Mode: %o}.FileMode() = %s, want %s", tt.mode, got, tt.want)
		}
	}
}
