package squashfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestReproducible: the same entries give byte-identical images at any
// GOMAXPROCS and worker count, and whatever order the entries arrive in.
func TestReproducible(t *testing.T) {
	nodes := append(sampleTree(DefaultBlockSize, true), bigDir(2000)[1:]...)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var first []byte
	for _, c := range []struct {
		procs, workers int
		reverse        bool
	}{{1, 0, false}, {2, 0, false}, {2, 7, false}, {1, 1, true}} {
		runtime.GOMAXPROCS(c.procs)
		in := nodes
		if c.reverse {
			in = reversedKeepingLinks(nodes)
		}
		img, _ := buildImage(t, in, Options{Workers: c.workers})
		if first == nil {
			first = img
			continue
		}
		if !bytes.Equal(img, first) {
			t.Errorf("GOMAXPROCS=%d Workers=%d reverse=%v: image %x differs from the first %x", c.procs, c.workers, c.reverse, sha256.Sum256(img), sha256.Sum256(first))
		}
	}
}

// reversedKeepingLinks reverses the entry order (hard links still follow
// their targets): the image's metadata must not depend on the order.
// Data blocks are laid out in input order, so only trees whose content
// order is unchanged compare equal: keep files first, in order.
func reversedKeepingLinks(nodes []tnode) []tnode {
	var files, rest []tnode
	for _, n := range nodes {
		if n.Mode.IsRegular() && n.Link == "" {
			files = append(files, n)
		} else {
			rest = append(rest, n)
		}
	}
	out := files
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i].Link == "" {
			out = append(out, rest[i])
		}
	}
	for _, n := range rest {
		if n.Link != "" {
			out = append(out, n)
		}
	}
	return out
}

// TestEpoch: with Options.Epoch, later mtimes are clamped and the
// superblock holds the epoch; AllRoot drops owners.
func TestEpoch(t *testing.T) {
	epoch := time.Unix(1600000000, 0)
	nodes := sampleTree(MinBlockSize, false)
	img, _ := buildImage(t, nodes, Options{Epoch: epoch, AllRoot: true, BlockSize: MinBlockSize})
	r, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.ModTime().Equal(epoch) {
		t.Errorf("ModTime() = %v, want %v", r.ModTime(), epoch)
	}
	for p, n := range readBack(t, img) {
		if n.Mtime > epoch.Unix() || n.UID != 0 || n.GID != 0 {
			t.Errorf("%s: mtime %d owner %d:%d, want <= %d and 0:0", p, n.Mtime, n.UID, n.GID, epoch.Unix())
		}
	}
}

// TestSources: a directory-free input (fstest.MapFS via AddFS) and a tar
// stream (AddTar) give the tree they describe.
func TestSources(t *testing.T) {
	nodes := sampleTree(DefaultBlockSize, true)
	want := expected(nodes)
	t.Run("tar", func(t *testing.T) {
		var buf bytes.Buffer
		writeTar(t, &buf, nodes)
		m := &memFile{}
		w, err := NewWriter(t.Context(), m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTar(&buf); err != nil {
			t.Fatalf("AddTar: %v", err)
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		got := readBack(t, m.b)
		w2 := withoutSockets(want) // tar has no sockets
		compareTrees(t, w2, got)
	})
	t.Run("fs", func(t *testing.T) {
		fsys := fstest.MapFS{}
		var plain []tnode
		for _, n := range nodes {
			if n.Link != "" || n.Mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 || n.Path == "." {
				continue
			}
			fsys[n.Path] = &fstest.MapFile{Data: []byte(n.Data), Mode: n.Mode, ModTime: time.Unix(n.Mtime, 0)}
			if n.Mode&fs.ModeSymlink != 0 {
				fsys[n.Path].Data = []byte(n.Target)
			}
			n.UID, n.GID, n.Xattrs = 0, 0, nil
			plain = append(plain, n)
		}
		m := &memFile{}
		w, err := NewWriter(t.Context(), m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddFS(fsys); err != nil {
			t.Fatalf("AddFS: %v", err)
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		want := expected(plain)
		got := readBack(t, m.b)
		for p, n := range got { // MapFS synthesises directories it was not given
			if w, ok := want[p]; ok && w.Mode.IsDir() {
				n.Mtime, n.Mode = w.Mtime, w.Mode
				got[p] = n
			}
		}
		compareTrees(t, want, got)
	})
}

func withoutSockets(m map[string]tnode) map[string]tnode {
	out := map[string]tnode{}
	for p, n := range m {
		if n.Mode&fs.ModeSocket == 0 {
			out[p] = n
		}
	}
	return out
}

// writeTar writes nodes as a PAX tar stream.
func writeTar(t testing.TB, w *bytes.Buffer, nodes []tnode) {
	tw := tar.NewWriter(w)
	for _, n := range nodes {
		if n.Mode&fs.ModeSocket != 0 {
			continue
		}
		h := &tar.Header{Name: n.Path, Mode: int64(n.Mode.Perm()), Uid: int(n.UID), Gid: int(n.GID),
			ModTime: time.Unix(n.Mtime, 0), Format: tar.FormatPAX, Devmajor: int64(n.Major), Devminor: int64(n.Minor)}
		if n.Mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if n.Mode&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if n.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch {
		case n.Link != "":
			h.Typeflag, h.Linkname = tar.TypeLink, n.Link
		case n.Mode.IsDir():
			h.Typeflag = tar.TypeDir
		case n.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, n.Target
		case n.Mode&fs.ModeCharDevice != 0:
			h.Typeflag = tar.TypeChar
		case n.Mode&fs.ModeDevice != 0:
			h.Typeflag = tar.TypeBlock
		case n.Mode&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(n.Data))
		}
		for k, v := range n.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(n.Data)); err != nil && h.Typeflag == tar.TypeReg {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAddDirAt: a host tree added under a path, with a filter.
func TestAddDirAt(t *testing.T) {
	src := t.TempDir()
	for _, p := range []string{"keep/a", "skip/b", "c"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &memFile{}
	w, err := NewWriter(t.Context(), m, Options{AllRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = w.AddDirAt(src, "/x/y", func(rel string, fi fs.FileInfo) bool {
		seen = append(seen, rel)
		return rel == "skip"
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	got := paths(readBack(t, m.b))
	want := []string{".", "x", "x/y", "x/y/c", "x/y/keep", "x/y/keep/a"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("AddDirAt tree = %v, want %v", got, want)
	}
	if strings.Join(seen, " ") != ". c keep keep/a skip" {
		t.Errorf("skip saw %v, want . c keep keep/a skip", seen)
	}
}
