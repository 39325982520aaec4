package image

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"initos/internal/testenv"
)

// importRoot makes a small root filesystem with every kind of file an
// import must carry; mtimes are whole seconds, some after epoch.
func importRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc/ssh", "usr/lib", "dev", "tmp", "var/empty"} {
		must(os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	big := make([]byte, 3<<20)
	rand.New(rand.NewSource(7)).Read(big)
	files := map[string]struct {
		body string
		mode os.FileMode
	}{
		"bin/sh":           {"#!shell\n", 0o755},
		"bin/su":           {"setuid\n", 0o4755},
		"etc/passwd":       {"root:x:0:0::/root:/bin/sh\n", 0o644},
		"etc/shadow":       {"root:*:1::::::\n", 0o640},
		"etc/ssh/key":      {"secret\n", 0o600},
		"usr/lib/big.so":   {string(big), 0o644},
		"usr/lib/zero.img": {strings.Repeat("\x00", 1<<20), 0o644},
		"usr/lib/empty":    {"", 0o644},
	}
	for p, f := range files {
		must(os.WriteFile(filepath.Join(root, p), []byte(f.body), f.mode))
		must(os.Chmod(filepath.Join(root, p), f.mode)) // past the umask
	}
	must(os.Chown(filepath.Join(root, "etc/shadow"), 0, 42))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o1777))
	must(os.Link(filepath.Join(root, "bin/sh"), filepath.Join(root, "bin/bash")))
	must(os.Symlink("sh", filepath.Join(root, "bin/dash")))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "etc/abs")))
	must(unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o620))
	must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Lsetxattr(filepath.Join(root, "etc/passwd"), "user.note", []byte("hello"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "bin/su"), "security.capability", []byte(capability), 0))
	// Whole-second mtimes, children before parents; one in the future.
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error { paths = append(paths, p); return err })
	for i := len(paths) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(testTime.Add(time.Duration(i) * time.Hour).UnixNano())
		if strings.HasSuffix(paths[i], "usr/lib/empty") {
			ts = unix.NsecToTimespec(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	return root
}

var testEpoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// layoutFiles reads every file of an OCI layout.
func layoutFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256hex(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestImportReproducible: two imports of one root give byte-identical
// layouts, for every compression; a tar of the root made by GNU tar
// (--sort=name, as mmdebstrap's) imports to the same image as the
// directory, compressed or not.
func TestImportReproducible(t *testing.T) {
	tarTool := testenv.Tool(t, "tar")
	zstdTool := testenv.Tool(t, "zstd")
	root := importRoot(t)
	ctx := context.Background()
	for _, c := range []Compression{Gzip, Zstd, Uncompressed} {
		opt := ImportOptions{Tag: "v1", Compression: c, Epoch: &testEpoch}
		a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
		ra, err := Import(ctx, root, a, opt)
		if err != nil {
			t.Fatalf("Import(%s, %s) = %v", root, c, err)
		}
		time.Sleep(10 * time.Millisecond)
		rb, err := Import(ctx, root, b, opt)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(layoutFiles(t, a), layoutFiles(t, b)); diff != "" {
			t.Errorf("two imports (%s) differ (-first +second):\n%s", c, diff)
		}
		if ra.Manifest.Digest != rb.Manifest.Digest || ra.Entries != 22 {
			t.Errorf("Import(%s) = %+v and %+v, want equal with 22 entries", c, ra, rb)
		}
	}

	opt := ImportOptions{Tag: "v1", Epoch: &testEpoch}
	want, err := Import(ctx, root, filepath.Join(t.TempDir(), "dir"), opt)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "root.tar")
	testenv.Run(t, tarTool, "--sort=name", "--numeric-owner", "--format=posix", "--xattrs", "--xattrs-include=*",
		"-C", root, "-cf", plain, ".")
	testenv.Run(t, zstdTool, "-q", "-k", plain, "-o", plain+".zst")
	for _, src := range []string{plain, plain + ".zst"} {
		got, err := Import(ctx, src, filepath.Join(t.TempDir(), "tar"), opt)
		if err != nil {
			t.Fatalf("Import(%s) = %v", src, err)
		}
		if got.DiffID != want.DiffID || got.Manifest.Digest != want.Manifest.Digest {
			t.Errorf("Import(%s) = diffID %s manifest %s, directory import gives %s %s",
				filepath.Base(src), got.DiffID, got.Manifest.Digest, want.DiffID, want.Manifest.Digest)
		}
	}
}

// TestImportReadByTools: skopeo, umoci and Store.Pull read the imported
// layout, and the unpacked trees equal the root.
func TestImportReadByTools(t *testing.T) {
	root := importRoot(t)
	lay := filepath.Join(t.TempDir(), "layout")
	res, err := Import(context.Background(), root, lay, ImportOptions{Tag: "base"})
	if err != nil {
		t.Fatal(err)
	}
	// A second image in the same layout; a re-import replaces its tag.
	for range 2 {
		if _, err := Import(context.Background(), filepath.Join(root, "etc"), lay, ImportOptions{Tag: "etc", Compression: Zstd}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := skopeo(t, "inspect", "--config", "--raw", "oci:"+lay+":base")
	if got := "sha256:" + sha256hex(string(cfg)); got != res.Config.String() {
		t.Errorf("skopeo inspect oci:DIR:base config = %s, want %s", got, res.Config)
	}
	if out := string(skopeo(t, "inspect", "--raw", "oci:"+lay+":etc")); !strings.Contains(out, "tar+zstd") {
		t.Errorf("skopeo inspect oci:DIR:etc = %s, want a zstd layer", out)
	}
	s, mnt := newStore(t)
	bundle := filepath.Join(mnt, "bundle")
	testenv.Run(t, "umoci", "unpack", "--image", lay+":base", bundle)
	im, _, err := s.Pull(context.Background(), "oci:"+lay+":base", HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{filepath.Join(bundle, "rootfs"), im.Path} {
		compareTrees(t, root, got)
	}
	if diff := cmp.Diff(dirMtimes(t, root), dirMtimes(t, im.Path)); diff != "" {
		t.Errorf("directory mtimes of the pulled import differ from the root (-root +pulled):\n%s", diff)
	}
	if _, _, err := s.Pull(context.Background(), "oci:"+lay, HostPlatform()); !errors.Is(err, ErrNoMatch) {
		t.Errorf("Pull(layout with base and etc, no tag) = %v, want ErrNoMatch", err)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil.tar")
	os.WriteFile(evil, tarBytes(t, []ent{{name: "ok", body: "x"}, {name: "../../escape", body: "x"}}), 0o644)
	wh := filepath.Join(dir, "wh.tar")
	os.WriteFile(wh, tarBytes(t, []ent{{name: "etc/.wh.passwd"}}), 0o644)
	badLayout := filepath.Join(dir, "bad")
	os.MkdirAll(badLayout, 0o755)
	os.WriteFile(filepath.Join(badLayout, "index.json"), []byte("{"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		ctx      context.Context
		src, dst string
		want     string
	}{
		{context.Background(), filepath.Join(dir, "missing"), filepath.Join(dir, "o1"), "no such file or directory"},
		{context.Background(), evil, filepath.Join(dir, "o2"), `has a ".." component`},
		{context.Background(), wh, filepath.Join(dir, "o3"), ".wh. names are whiteouts"},
		{context.Background(), importRoot(t), badLayout, "index.json: unexpected end of JSON input"},
		{ctx, importRoot(t), filepath.Join(dir, "o4"), "context canceled"},
	} {
		_, err := Import(tt.ctx, tt.src, tt.dst, ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.src) {
			t.Errorf("Import(%s, %s) = %v, want an error naming the source and saying %q", tt.src, tt.dst, err, tt.want)
		}
		// Nothing but the empty layout skeleton is left.
		if ents, _ := os.ReadDir(filepath.Join(tt.dst, "blobs", "sha256")); len(ents) != 0 {
			t.Errorf("Import(%s) failed but left %d blobs", tt.src, len(ents))
		}
		if _, err := os.Stat(filepath.Join(tt.dst, "index.json")); err == nil && tt.dst != badLayout {
			t.Errorf("Import(%s) failed but wrote index.json", tt.src)
		}
	}
}

// TestCompressorsReproducible: the layer compressors' output depends on
// the bytes only, not on how they are written or on GOMAXPROCS; gzip -d
// and zstd -d read it back (zstd: several frames).
func TestCompressorsReproducible(t *testing.T) {
	tools := map[Compression]string{Gzip: testenv.Tool(t, "gzip"), Zstd: testenv.Tool(t, "zstd")}
	data := make([]byte, 2*zstdFrameSize+123)
	r := rand.New(rand.NewSource(3))
	for i := 0; i < len(data); i += 4096 { // compressible: repeated runs
		r.Read(data[i : i+min(200, len(data)-i)])
	}
	var last bytes.Buffer
	compress := func(c Compression, procs int, chunk func() int) string {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		var buf bytes.Buffer
		w, _, err := newCompressor(c, 0, &buf)
		if err != nil {
			t.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			n := min(chunk(), len(rest))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
		last = buf
		return sha256hex(buf.String())
	}
	for _, c := range []Compression{Gzip, Zstd} {
		want := compress(c, 1, func() int { return len(data) })
		cmd := exec.Command(tools[c], "-d", "-c")
		cmd.Stdin = &last
		if out, err := cmd.Output(); err != nil || !bytes.Equal(out, data) {
			t.Errorf("%s -d of our %s stream: %d bytes, %v; want the %d bytes compressed", tools[c], c, len(out), err, len(data))
		}
		for _, procs := range []int{1, 2, 8} {
			if got := compress(c, procs, func() int { return 1 + r.Intn(300000) }); got != want {
				t.Errorf("%s with GOMAXPROCS=%d and random writes: output %s, want %s", c, procs, got[:12], want[:12])
			}
		}
	}
}

// TestImportStdin imports a tar from standard input (mmdebstrap ... - |).
func TestImportStdin(t *testing.T) {
	tarTool := testenv.Tool(t, "tar")
	root := importRoot(t)
	lay := filepath.Join(t.TempDir(), "layout")
	cmd := exec.Command(tarTool, "--sort=name", "--numeric-owner", "-C", root, "-c", ".")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = out.(*os.File)
	defer func() { os.Stdin = old }()
	res, err := Import(context.Background(), "-", lay, ImportOptions{})
	cmd.Wait()
	if err != nil || res.Entries != 22 {
		t.Errorf("Import(-) = %+v, %v, want 22 entries", res, err)
	}
}
