package squashfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
)

// oracleTree is the tree the oracle tests materialise on the host: every
// inode type and file shape, a 10k-entry directory and a deep tree.
func oracleTree(bs int) []tnode {
	n := sampleTree(bs, true)
	n = append(n, bigDir(10000)[1:]...)
	return append(n, deepTree(100)[1:]...)
}

// buildDir writes an image of a host directory to a file.
func buildDir(t testing.TB, src, img string, opts Options) *Result {
	t.Helper()
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddDir(src); err != nil {
		w.Abort()
		t.Fatalf("AddDir(%s): %v", src, err)
	}
	res, err := w.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return res
}

// TestUnsquashfsExtract: unsquashfs -d of our images (every compressor,
// small and default blocks) gives back the source tree: content, modes,
// owners, mtimes, xattrs, symlinks, hard links and device numbers.
func TestUnsquashfsExtract(t *testing.T) {
	testenv.RequireRoot(t)
	unsq := testenv.Tool(t, "unsquashfs")
	src := filepath.Join(t.TempDir(), "src")
	materialize(t, src, oracleTree(DefaultBlockSize))
	want := scanHost(t, src)
	dropUnsupported(want)
	for _, bs := range []int{MinBlockSize, DefaultBlockSize} {
		for _, c := range []Compressor{Zstd, Gzip, XZ, LZ4} {
			t.Run(fmt.Sprintf("%v/%d", c, bs), func(t *testing.T) {
				dir := t.TempDir()
				img, out := filepath.Join(dir, "img.sqfs"), filepath.Join(dir, "out")
				buildDir(t, src, img, Options{Compressor: c, BlockSize: bs})
				if b, err := exec.Command(unsq, "-no-progress", "-d", out, img).CombinedOutput(); err != nil {
					t.Fatalf("unsquashfs -d: %v\n%s", err, b)
				}
				compareTrees(t, want, scanHost(t, out))
			})
		}
	}
}

// lsLine matches one line of unsquashfs -lln.
var lsLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+)\s+(-?\d+,\s*-?\d+|\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(/.*)?$`)

// TestUnsquashfsList: unsquashfs -lln lists exactly the entries written,
// with their type and permission string, owner, size, minute and
// symlink target.
func TestUnsquashfsList(t *testing.T) {
	unsq := testenv.Tool(t, "unsquashfs")
	nodes := append(sampleTree(MinBlockSize, true), bigDir(300)[1:]...)
	img, _ := buildImage(t, nodes, Options{BlockSize: MinBlockSize})
	path := filepath.Join(t.TempDir(), "img.sqfs")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unsq, "-lln", path)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v\n%s", err, b)
	}
	want := expected(nodes)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		m := lsLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("unsquashfs -lln line %q: unrecognised", line)
			continue
		}
		name, target, _ := strings.Cut(strings.TrimPrefix(m[6], "/"), " -> ")
		if name == "" {
			name = "."
		}
		n, ok := want[name]
		if !ok {
			t.Errorf("unsquashfs lists %q, which was not written", name)
			continue
		}
		seen++
		if got := fmt.Sprintf("%s %d/%d %s %s", m[1], atoi(m[2]), atoi(m[3]), m[5], target); got != lsWant(n) {
			t.Errorf("unsquashfs -lln %s = %q, want %q", name, got, lsWant(n))
		}
		if n.Mode.IsRegular() && m[4] != fmt.Sprint(len(n.Data)) {
			t.Errorf("unsquashfs -lln %s: size %s, want %d", name, m[4], len(n.Data))
		}
	}
	if seen != len(want) {
		t.Errorf("unsquashfs -lln listed %d entries, want %d", seen, len(want))
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// lsWant formats a tree node like the checked part of an -lln line.
func lsWant(n tnode) string {
	return fmt.Sprintf("%s %d/%d %s %s", lsMode(n.Mode), n.UID, n.GID,
		time.Unix(n.Mtime, 0).UTC().Format("2006-01-02 15:04"), n.Target)
}

// lsMode is ls -l's mode string.
func lsMode(m fs.FileMode) string {
	typ := map[fs.FileMode]byte{fs.ModeDir: 'd', fs.ModeSymlink: 'l', fs.ModeDevice: 'b',
		fs.ModeDevice | fs.ModeCharDevice: 'c', fs.ModeNamedPipe: 'p', fs.ModeSocket: 's'}[m.Type()]
	if typ == 0 {
		typ = '-'
	}
	b := []byte{typ}
	for i, c := range "rwxrwxrwx" {
		if m&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	special := func(i int, set bool, lower, upper byte) {
		if set {
			b[i] = map[bool]byte{true: lower, false: upper}[b[i] == 'x']
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
