package squashfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

// TestReadMksquashfs: our Reader reads images mksquashfs makes of the
// oracle tree (every compressor, several block sizes and fragment and
// duplicate settings) exactly as the tree is on the host.
func TestReadMksquashfs(t *testing.T) {
	testenv.RequireRoot(t)
	mksq := testenv.Tool(t, "mksquashfs")
	src := filepath.Join(t.TempDir(), "src")
	materialize(t, src, oracleTree(DefaultBlockSize))
	want := scanHost(t, src)
	dropUnsupported(want)
	for _, args := range []string{
		"-comp zstd", "-comp gzip -b 4096", "-comp xz", "-comp lz4 -Xhc", "-comp zstd -b 1M -always-use-fragments",
		"-comp gzip -no-fragments -no-duplicates", "-comp zstd -noI -noD -noF -noX", "-comp lz4 -b 64K -exports",
	} {
		t.Run(args, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img.sqfs")
			cmd := exec.Command(mksq, append([]string{src, img, "-noappend", "-quiet", "-no-progress"}, strings.Fields(args)...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mksquashfs %s: %v\n%s", args, err, b)
			}
			data, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			compareTrees(t, want, readBack(t, data))
		})
	}
}

// TestReadMksquashfsSameListing: for a tree mksquashfs and our writer both
// store, our Reader gives the same tree from either image.
func TestReadMksquashfsSameListing(t *testing.T) {
	mksq := testenv.Tool(t, "mksquashfs")
	src := filepath.Join(t.TempDir(), "src")
	nodes := []tnode{{Path: ".", Mode: 0o755 | 1<<31}, {Path: "a/b", Mode: 0o644, Data: pattern("text", 300000, 1)}, {Path: "a/c", Mode: 0o600, Data: "c"}}
	nodes[0].Mode = 0o755 | os.ModeDir
	if err := os.MkdirAll(filepath.Join(src, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := os.WriteFile(filepath.Join(src, n.Path), []byte(n.Data), n.Mode.Perm()); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "img.sqfs")
	if b, err := exec.Command(mksq, src, img, "-noappend", "-quiet", "-no-progress").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, b)
	}
	theirs, _ := os.ReadFile(img)
	ours := filepath.Join(t.TempDir(), "ours.sqfs")
	buildDir(t, src, ours, Options{})
	mine, _ := os.ReadFile(ours)
	a, b := readBack(t, theirs), readBack(t, mine)
	compareTrees(t, a, b)
	if bytes.Equal(theirs, mine) {
		t.Log("identical bytes")
	}
}
