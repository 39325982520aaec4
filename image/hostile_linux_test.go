package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tampered serves other bytes than its digest promises.
type tampered struct {
	v1.Layer
	data []byte
}

func (l tampered) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}

// wrongDiffID claims another diffID than its content has.
type wrongDiffID struct{ v1.Layer }

func (wrongDiffID) DiffID() (v1.Hash, error) {
	return v1.NewHash("sha256:" + strings.Repeat("0", 64))
}

func TestHostileLayers(t *testing.T) {
	_, mnt := newStore(t)
	outside := t.TempDir() // a host directory layers try to reach
	passwdLinks := nlink(t, "/etc/passwd")
	good := layerOf(t, []ent{{name: "etc/", typ: tar.TypeDir}, {name: "etc/ok", body: "ok"}})
	zeros := strings.Repeat("\x00", 4<<20)
	many := make([]ent, 200)
	for i := range many {
		many[i] = ent{name: "f" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune('a'+i/26))}
	}
	compressedOther, _ := good.Compressed()
	otherBytes, _ := io.ReadAll(compressedOther)
	badLayer := layerOf(t, []ent{{name: "x", body: "real"}})

	tests := []struct {
		name   string
		layers []v1.Layer
		lim    Limits
		want   error
	}{
		{"dotdot", []v1.Layer{layerOf(t, []ent{{name: "../evil", body: "x"}})}, Limits{}, ErrUnsafePath},
		{"dotdot inner", []v1.Layer{good, layerOf(t, []ent{{name: "etc/../../evil", body: "x"}})}, Limits{}, ErrUnsafePath},
		{"absolute", []v1.Layer{layerOf(t, []ent{{name: "/evil", body: "x"}})}, Limits{}, ErrUnsafePath},
		{"dotdot dir", []v1.Layer{layerOf(t, []ent{{name: "a/../..", typ: tar.TypeDir}})}, Limits{}, ErrUnsafePath},
		{"whiteout dotdot", []v1.Layer{layerOf(t, []ent{{name: ".wh..."}})}, Limits{}, ErrUnsafePath},
		{"symlink parent absolute", []v1.Layer{layerOf(t, []ent{
			{name: "esc", typ: tar.TypeSymlink, link: outside}, {name: "esc/pwned", body: "x"}})}, Limits{}, syscall.ENOENT},
		{"symlink parent relative", []v1.Layer{layerOf(t, []ent{
			{name: "d/", typ: tar.TypeDir},
			{name: "d/esc", typ: tar.TypeSymlink, link: strings.Repeat("../", 30) + strings.TrimPrefix(outside, "/")},
			{name: "d/esc/pwned", body: "x"}})}, Limits{}, syscall.ENOENT},
		{"symlink parent in lower layer", []v1.Layer{
			layerOf(t, []ent{{name: "esc", typ: tar.TypeSymlink, link: outside}}),
			layerOf(t, []ent{{name: "esc/pwned", body: "x"}})}, Limits{}, syscall.ENOENT},
		{"hardlink dotdot", []v1.Layer{layerOf(t, []ent{{name: "hl", typ: tar.TypeLink, link: "../../../../etc/passwd"}})}, Limits{}, ErrUnsafePath},
		{"hardlink absolute", []v1.Layer{layerOf(t, []ent{{name: "hl", typ: tar.TypeLink, link: "/etc/passwd"}})}, Limits{}, ErrUnsafePath},
		{"hardlink via symlink", []v1.Layer{layerOf(t, []ent{
			{name: "etc/", typ: tar.TypeDir},
			{name: "s", typ: tar.TypeSymlink, link: "/etc"}, {name: "hl", typ: tar.TypeLink, link: "s/passwd"}})}, Limits{}, syscall.ENOENT},
		{"too many entries", []v1.Layer{layerOf(t, many)}, Limits{MaxEntries: 100}, ErrLimit},
		{"file too big", []v1.Layer{layerOf(t, []ent{{name: "big", body: zeros}})}, Limits{MaxFileSize: 1 << 20}, ErrLimit},
		{"tar bomb", []v1.Layer{good, layerOf(t, []ent{{name: "a", body: zeros}, {name: "b", body: zeros}, {name: "c", body: zeros}})}, Limits{MaxTotalBytes: 8 << 20}, ErrLimit},
		{"xattr bomb", []v1.Layer{layerOf(t, []ent{{name: "x", xattrs: map[string]string{"user.a": strings.Repeat("v", 2000)}}})}, Limits{MaxXattrBytes: 1000}, ErrLimit},
		{"too many layers", []v1.Layer{good, good, good}, Limits{MaxLayers: 2}, ErrLimit},
		{"bad digest", []v1.Layer{good, tampered{badLayer, otherBytes}}, Limits{}, ErrDigest},
		{"bad diffID", []v1.Layer{good, wrongDiffID{badLayer}}, Limits{}, ErrDigest},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(mnt, "store", string(rune('a'+i))))
			if err != nil {
				t.Fatal(err)
			}
			s.Limits = tt.lim
			_, _, err = s.Install(context.Background(), imageOf(t, tt.layers...), "hostile:1")
			if !errors.Is(err, tt.want) {
				t.Errorf("Install(%s) = %v, want %v", tt.name, err, tt.want)
			}
			assertEmptyStore(t, s)
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("Install(%s) wrote %d entries outside the root", tt.name, len(ents))
			}
			if n := nlink(t, "/etc/passwd"); n != passwdLinks {
				t.Errorf("Install(%s): /etc/passwd link count %d, want %d", tt.name, n, passwdLinks)
			}
		})
	}
}

// assertEmptyStore checks that a failed install left nothing behind.
func assertEmptyStore(t *testing.T, s *Store) {
	t.Helper()
	for _, d := range []string{"layers", "images", "roots"} {
		if names := ls(t, filepath.Join(s.Dir, d)); len(names) != 0 {
			t.Errorf("after a failed install %s/ holds %v, want nothing", d, names)
		}
	}
	for _, n := range ls(t, s.Dir) {
		if strings.HasPrefix(n, ".tmp-") {
			t.Errorf("after a failed install %s is left", n)
		}
	}
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Errorf("after a failed install List() = %v, %v, want none", list, err)
	}
}

func nlink(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Nlink)
}
