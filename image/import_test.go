package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestNormalizeHeader(t *testing.T) {
	epoch := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	late := epoch.Add(time.Hour + 500*time.Millisecond)
	tests := []struct {
		in   tar.Header
		keep bool
		want tar.Header
		err  string
	}{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir}, false, tar.Header{}, ""},
		{tar.Header{Name: "./etc", Typeflag: tar.TypeDir, Mode: 0o40755, Uname: "root", ModTime: late, AccessTime: late},
			true, tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}, ""},
		{tar.Header{Name: "/bin/sh", Typeflag: tar.TypeRegA, Size: 3, Mode: 0o104755, Uid: 5, Gid: 6, ModTime: epoch.Add(-time.Second / 2),
			PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b", "atime": "1", "LIBARCHIVE.creationtime": "2"}},
			true, tar.Header{Name: "bin/sh", Typeflag: tar.TypeReg, Size: 3, Mode: 0o4755, Uid: 5, Gid: 6, ModTime: epoch.Add(-time.Second),
				PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}, ""},
		{tar.Header{Name: "./bin/bash", Typeflag: tar.TypeLink, Linkname: "./bin/sh"},
			true, tar.Header{Name: "bin/bash", Typeflag: tar.TypeLink, Linkname: "bin/sh", ModTime: time.Unix(0, 0)}, ""},
		{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
			true, tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666, ModTime: time.Unix(0, 0)}, ""},
		{tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader}, false, tar.Header{}, ""},
		{tar.Header{Name: "a/../../x", Typeflag: tar.TypeReg}, false, tar.Header{}, `".." component`},
		{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "../etc/passwd"}, false, tar.Header{}, `hard link to "../etc/passwd"`},
		{tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "./"}, false, tar.Header{}, "unsafe path"},
		{tar.Header{Name: "etc/.wh.passwd", Typeflag: tar.TypeReg}, false, tar.Header{}, "whiteouts"},
		{tar.Header{Name: "v", Typeflag: 'V'}, false, tar.Header{}, "unsupported tar type"},
	}
	for _, tt := range tests {
		h := tt.in
		keep, err := normalizeHeader(&h, &epoch)
		if keep != tt.keep || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("normalizeHeader(%q) = %v, %v, want %v, error %q", tt.in.Name, keep, err, tt.keep, tt.err)
			continue
		}
		if keep {
			tt.want.ModTime = tt.want.ModTime.UTC()
			if h.Name != tt.want.Name || h.Typeflag != tt.want.Typeflag || h.Mode != tt.want.Mode || h.Size != tt.want.Size ||
				h.Linkname != tt.want.Linkname || !h.ModTime.Equal(tt.want.ModTime) || h.Uname != "" || !h.AccessTime.IsZero() ||
				h.Uid != tt.want.Uid || h.Devmajor != tt.want.Devmajor || len(h.PAXRecords) != len(tt.want.PAXRecords) {
				t.Errorf("normalizeHeader(%q) = %+v, want %+v", tt.in.Name, h, tt.want)
			}
		}
	}
}

// FuzzImportTar imports arbitrary bytes as a root filesystem tar: it must
// not panic, and what it writes must be a tar that reads back.
func FuzzImportTar(f *testing.F) {
	f.Add(tarBytes(f, []ent{{name: "./", typ: tar.TypeDir}, {name: "./etc/passwd", body: "root"}, {name: "bin/sh", typ: tar.TypeLink, link: "./etc/passwd"}}))
	f.Add(tarBytes(f, []ent{{name: "../x", body: "y"}}))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		e := newEmitter(context.Background(), &out, ImportOptions{})
		if err := readTarSource(bytes.NewReader(b), int64(len(b)), e); err != nil {
			return
		}
		if err := e.close(); err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(&out)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("the imported layer does not read back: %v", err)
			}
			if _, err := CleanPath(hdr.Name); err != nil {
				t.Fatalf("the imported layer has an unsafe name: %v", err)
			}
		}
	})
}
