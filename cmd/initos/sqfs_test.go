package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"initos/internal/testenv"
)

// sqfsTree writes a small source tree.
func sqfsTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for p, c := range map[string]string{"etc/motd": "hello\n", "bin/tool": strings.Repeat("tool ", 40000), "empty": ""} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("etc/motd", filepath.Join(dir, "motd")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSqfsBuildLsCatExtract(t *testing.T) {
	src := sqfsTree(t)
	img := filepath.Join(t.TempDir(), "img.sqfs")
	out := mustRun(t, "sqfs", "build", "--epoch", "1700000000", "--all-root", src, img)
	if !strings.Contains(out, "Image:           \t"+img) || !strings.Contains(out, "Inodes:          \t7") {
		t.Errorf("sqfs build printed\n%s\nwant the image and 7 inodes", out)
	}
	if got := mustRun(t, "sqfs", "ls", img); got != "/\n/bin\n/bin/tool\n/empty\n/etc\n/etc/motd\n/motd\n" {
		t.Errorf("sqfs ls = %q", got)
	}
	if got := mustRun(t, "sqfs", "ls", "-l", img, "/etc"); got != "drwxr-xr-x 0/0           27 2023-11-14 22:13 /etc\n-rw-r--r-- 0/0            6 2023-11-14 22:13 /etc/motd\n" {
		t.Errorf("sqfs ls -l /etc = %q", got)
	}
	var ents []lsEntry
	if err := json.Unmarshal([]byte(mustRun(t, "sqfs", "ls", "--json", img, "motd")), &ents); err != nil || len(ents) != 1 || ents[0].Target != "etc/motd" {
		t.Errorf("sqfs ls --json motd = %+v, %v; want the symlink to etc/motd", ents, err)
	}
	if got := mustRun(t, "sqfs", "cat", img, "/motd"); got != "hello\n" {
		t.Errorf("sqfs cat /motd = %q, want the target's content", got)
	}
	dst := filepath.Join(t.TempDir(), "x")
	mustRun(t, "sqfs", "extract", img, dst)
	if b, err := exec.Command("diff", "-r", "--no-dereference", src, dst).CombinedOutput(); err != nil {
		t.Errorf("diff -r source extracted: %v\n%s", err, b)
	}
	again := filepath.Join(t.TempDir(), "again.sqfs")
	mustRun(t, "sqfs", "build", "--epoch", "1700000000", "--all-root", src, again)
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the same tree differ")
	}
}

func TestSqfsBuildVerity(t *testing.T) {
	src := sqfsTree(t)
	img := filepath.Join(t.TempDir(), "img.sqfs")
	var j sqfsJSON
	if err := json.Unmarshal([]byte(mustRun(t, "sqfs", "build", "--verity", "--json", "--comp", "gzip", "--block-size", "64K", src, img)), &j); err != nil {
		t.Fatal(err)
	}
	if j.Verity == nil || j.Verity.HashOffset != j.Size || j.Compressor != "gzip" || j.BlockSize != 64<<10 || j.Level != 9 {
		t.Fatalf("sqfs build --json = %+v, want gzip 9, 64K, a tree at the image size", j)
	}
	text := mustRun(t, "sqfs", "build", "--verity", "--comp", "gzip", "--block-size", "64K", src, img)
	for _, want := range []string{"Root hash:      \t" + j.Verity.RootHash, "Hash offset:     \t" + strconv.FormatInt(j.Size, 10), "Data blocks:     \t" + strconv.FormatInt(j.Size/4096, 10)} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("sqfs build --verity printed\n%s\nwant a line %q", text, want)
		}
	}
	vs := testenv.Tool(t, "veritysetup")
	if b, err := exec.Command(vs, "verify", img, img, j.Verity.RootHash, "--hash-offset="+strconv.FormatInt(j.Size, 10)).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify: %v\n%s", err, b)
	}
	if got := mustRun(t, "sqfs", "cat", img, "etc/motd"); got != "hello\n" {
		t.Errorf("sqfs cat of a verity image = %q", got)
	}
}

func TestSqfsBuildTar(t *testing.T) {
	var tb bytes.Buffer
	gz := gzip.NewWriter(&tb)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{{"a/b.txt", "bee"}, {"c", "sea"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	gz.Close()
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "layer.tar.gz")
	if err := os.WriteFile(tarPath, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img.sqfs")
	mustRun(t, "sqfs", "build", tarPath, img)
	if got := mustRun(t, "sqfs", "cat", img, "a/b.txt"); got != "bee" {
		t.Errorf("sqfs cat a/b.txt of a tar.gz build = %q", got)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	mustRun(t, "sqfs", "build", "-", img)
	if got := mustRun(t, "sqfs", "cat", img, "c"); got != "sea" {
		t.Errorf("sqfs cat c of a stdin build = %q", got)
	}
}

func TestSqfsErrors(t *testing.T) {
	src := sqfsTree(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img.sqfs")
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"sqfs", "build", src}, 2, "wrong number of arguments"},
		{[]string{"sqfs", "build", "--comp", "lzo", src, img}, 2, `unknown compressor "lzo"`},
		{[]string{"sqfs", "build", "--block-size", "3K", src, img}, 2, `--block-size "3K": not a power of two`},
		{[]string{"sqfs", "build", "--block-size", "lots", src, img}, 2, "not a size in bytes"},
		{[]string{"sqfs", "build", "--salt", "00", src, img}, 2, "--salt needs --verity"},
		{[]string{"sqfs", "build", "--verity", "--salt", "xyz", src, img}, 2, "--salt: encoding/hex"},
		{[]string{"sqfs", "build", "--epoch", "-5", src, img}, 2, `--epoch "-5": not a number of seconds`},
		{[]string{"sqfs", "build", "--level", "99", src, img}, 1, "zstd level 99 out of range 1..22"},
		{[]string{"sqfs", "build", filepath.Join(dir, "missing"), img}, 1, "no such file or directory"},
		{[]string{"sqfs", "ls", filepath.Join(dir, "missing")}, 1, "no such file or directory"},
		{[]string{"sqfs", "ls", src}, 1, "is a directory"},
		{[]string{"sqfs", "cat", junk, "x"}, 1, "corrupt image: bad magic"},
		{[]string{"sqfs", "frob"}, 2, "unknown subcommand"},
	} {
		err := mustFail(t, c.args...)
		if err == nil {
			continue
		}
		if got := exitCode(err, io.Discard); got != c.status || !strings.Contains(err.Error(), c.want) {
			t.Errorf("initos %q: exit %d, %v; want exit %d and %q", c.args, got, err, c.status, c.want)
		}
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Errorf("failed builds left %s: %v", img, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed builds left %v", ents)
	}
}

// TestSqfsCancel: an interrupted build (SIGINT cancels the context)
// leaves nothing behind.
func TestSqfsCancel(t *testing.T) {
	src := sqfsTree(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"sqfs", "build", src, filepath.Join(dir, "img.sqfs")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("sqfs build with a cancelled context = %v, want context canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a cancelled build left %v", ents)
	}
}

func TestSqfsHelp(t *testing.T) {
	for _, verb := range []string{"sqfs build", "sqfs ls", "sqfs cat", "sqfs extract", "modules pack"} {
		var stdout bytes.Buffer
		err := run(context.Background(), append(strings.Fields(verb), "--help"), &stdout, io.Discard)
		if code := exitCode(err, io.Discard); code != 0 || !strings.HasPrefix(stdout.String(), "usage: initos "+verb+" ") {
			t.Errorf("initos %s --help: exit %d, stdout %q; want 0 and the usage", verb, code, stdout.String())
		}
	}
}
