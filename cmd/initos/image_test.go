package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"initos/btrfsioctl/btrfstest"
	"initos/image"
)

// imageLayout writes a one-layer image holding etc/os-release to an OCI
// layout and returns its directory.
func imageLayout(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := "ID=initos\n"
	for _, err := range []error{
		tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}),
		tw.WriteHeader(&tar.Header{Name: "etc/os-release", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}),
		func() error { _, err := tw.Write([]byte(body)); return err }(),
		tw.Close(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "initos/os:1"})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// wantCLIError runs initos with args and checks its exit status and that
// its error says want.
func wantCLIError(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	_, err := runCLI(t, args...)
	if got := exitCode(err, io.Discard); got != code || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("initos %q = %v (exit %d), want exit %d and an error saying %q", args, err, got, code, want)
	}
}

func TestImageCLI(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	store := filepath.Join(mnt, "images")
	dir := imageLayout(t)

	out := mustRun(t, "image", "pull", "oci:"+dir, "--store", store)
	if !strings.Contains(out, "initos/os:1") || !strings.Contains(out, "unpacked 1 of 1 layers") {
		t.Errorf("image pull = %q, want the name and 1 layer unpacked", out)
	}
	if out := mustRun(t, "image", "pull", "oci:"+dir+":initos/os:1", "--store", store); !strings.Contains(out, "unpacked 0 of 1") {
		t.Errorf("second image pull = %q, want nothing unpacked", out)
	}
	if out := mustRun(t, "image", "list", "--store", store); !strings.Contains(out, "1 layers\tinitos/os:1") {
		t.Errorf("image list = %q", out)
	}
	var list []imageJSON
	if err := json.Unmarshal([]byte(mustRun(t, "image", "list", "--json", "--store", store)), &list); err != nil ||
		len(list) != 1 || list[0].Names[0] != "initos/os:1" || len(list[0].Chain) != 1 || !strings.HasPrefix(list[0].Digest, "sha256:") {
		t.Errorf("image list --json = %+v, %v, want one image named initos/os:1", list, err)
	}
	// --default keeps what else initos.conf says.
	os.WriteFile(filepath.Join(mnt, image.ConfigName), []byte("root=old\nfuture.key=kept\n"), 0o644)
	out = mustRun(t, "image", "root", "initos/os:1", "--store", store, "--as", "host", "--default")
	root := filepath.Join(store, "roots", "host")
	if !strings.HasPrefix(out, root+"\n") {
		t.Errorf("image root = %q, want %s first", out, root)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/os-release")); err != nil || string(b) != "ID=initos\n" {
		t.Errorf("root etc/os-release = %q, %v", b, err)
	}
	c, err := image.ReadConfigFile(filepath.Join(mnt, image.ConfigName))
	if err != nil || c.Root != "images/roots/host" || !strings.HasPrefix(c.Image, "sha256:") || c.Extra["future.key"] != "kept" {
		t.Errorf("host-root config = %+v, %v, want root=images/roots/host and future.key kept", c, err)
	}
	mustRun(t, "image", "rm", "initos/os:1", "--store", store)
	if out := mustRun(t, "image", "gc", "--store", store); !strings.Contains(out, "removed layers/sha256-") {
		t.Errorf("image gc = %q, want the layer removed", out)
	}
	if out := mustRun(t, "image", "list", "--store", store); out != "" {
		t.Errorf("image list after rm+gc = %q, want empty", out)
	}
	if out := mustRun(t, "image", "list", "--json", "--store", store); out != "[]\n" {
		t.Errorf("image list --json of an empty store = %q, want []", out)
	}

	typo := filepath.Join(mnt, "typo")
	bad := filepath.Join(mnt, "bad-store")
	for _, tt := range []struct {
		code int
		want string
		args []string
	}{
		{2, "--store is required", []string{"image", "list"}},
		{1, typo + ": no such file or directory", []string{"image", "list", "--store", typo}},
		{1, "not an image store (no layers/ directory)", []string{"image", "gc", "--store", mnt}},
		{2, `--platform: parse platform "nope"`, []string{"image", "pull", "oci:" + dir, "--store", bad, "--platform", "nope"}},
		{2, "wrong number of arguments (0, want 1)", []string{"image", "pull", "--store", bad}},
		{1, "image not found: \"nope:1\"", []string{"image", "rm", "nope:1", "--store", store}},
		{1, `no image tagged "v9"`, []string{"image", "pull", "oci:" + dir + ":v9", "--store", store}},
		{2, "flag provided but not defined: -frob", []string{"image", "root", "x", "--store", store, "--frob"}},
	} {
		wantCLIError(t, tt.code, tt.want, tt.args...)
	}
	for _, p := range []string{typo, bad} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a failed command created %s: %v", p, err)
		}
	}
}

func TestImageHelp(t *testing.T) {
	for _, verb := range []string{"pull", "list", "rm", "gc", "root", "import"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"image", verb, "--help"}, &stdout, &stderr)
		if exitCode(err, io.Discard) != 0 || !strings.HasPrefix(stdout.String(), "usage: initos image "+verb+" ") || stderr.Len() != 0 {
			t.Errorf("initos image %s --help = %v, stdout %q, stderr %q, want usage on stdout, exit 0", verb, err, stdout.String(), stderr.String())
		}
		if verb != "import" && !strings.Contains(stdout.String(), "--store") {
			t.Errorf("initos image %s --help does not show --store:\n%s", verb, stdout.String())
		}
	}
}

// TestImagePullProgress: pull draws its bar on a terminal stderr, and
// nothing with --progress=false.
func TestImagePullProgress(t *testing.T) {
	mnt := btrfstest.Mount(t, 256)
	dir := imageLayout(t)
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NONBLOCK, 0) // pollable: read deadlines work
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	for i, enabled := range []bool{false, true} {
		var stdout bytes.Buffer
		args := []string{"image", "pull", "oci:" + dir, "--store", filepath.Join(mnt, fmt.Sprint("s", i)), fmt.Sprintf("--progress=%t", enabled)}
		if err := run(context.Background(), args, &stdout, tty); err != nil {
			t.Fatal(err)
		}
		m.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 4096)
		got, _ := m.Read(buf)
		// A pull this small ends within the bar's redraw throttle: the
		// bar only clears its line; disabled, nothing is written at all.
		if drew := got > 0; drew != enabled {
			t.Errorf("initos %q on a terminal wrote %q, want a bar: %t", args, buf[:got], enabled)
		}
	}
}
