package image

import (
	"archive/tar"
	"context"
	"debug/elf"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/btrfsioctl"
	"initos/internal/testenv"
)

// startRegistry serves an in-memory registry on loopback and returns its
// host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func ls(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestPullSources(t *testing.T) {
	_, mnt := newStore(t)
	ctx := context.Background()
	img := imageOf(t, baseLayer(t), upperLayer(t))
	want := filepath.Join(mnt, "oracle")
	extractOracle(t, img, want)
	digest, _ := img.Digest()

	host := startRegistry(t)
	ref, _ := name.ParseReference(host+"/initos/test:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	layoutDir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "initos/layout:v1"})); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("initos/archive:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}

	tests := []struct{ src, name string }{
		{ref.String(), ref.Name()},
		{"oci:" + layoutDir, "initos/layout:v1"},
		{"docker-archive:" + archive, "index.docker.io/initos/archive:v1"},
	}
	for _, tt := range tests {
		kind := strings.SplitN(tt.src, ":", 2)[0]
		t.Run(kind, func(t *testing.T) {
			// A store of its own, so every source is unpacked.
			s, err := Open(filepath.Join(mnt, "store-"+kind))
			if err != nil {
				t.Fatal(err)
			}
			im, st, err := s.Pull(ctx, tt.src, HostPlatform())
			if err != nil {
				t.Fatalf("Pull(%s): %v", tt.src, err)
			}
			if !contains(im.Names, tt.name) {
				t.Errorf("Pull(%s).Names = %v, want %s in it", tt.src, im.Names, tt.name)
			}
			if st.Layers != 2 {
				t.Errorf("Pull(%s) unpacked %d layers, want 2", tt.src, st.Layers)
			}
			compareTrees(t, want, im.Path)
			if kind != "docker-archive" && im.Digest != digest.String() {
				t.Errorf("Pull(%s).Digest = %s, want %s", tt.src, im.Digest, digest)
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestPullMultiPlatform(t *testing.T) {
	s, _ := newStore(t)
	host := startRegistry(t)
	mk := func(arch string) v1.Image {
		img := imageOf(t, layerOf(t, []ent{{name: "arch", body: arch}}))
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.Architecture, cf.Variant = arch, ""
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: mk("amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: mk("arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	ref, _ := name.ParseReference(host + "/initos/multi:v1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"arm64", "amd64"} {
		p, err := ParsePlatform("linux/" + arch)
		if err != nil {
			t.Fatal(err)
		}
		im, _, err := s.Pull(context.Background(), ref.String(), p)
		if err != nil {
			t.Fatalf("Pull(%s, %s): %v", ref, arch, err)
		}
		if b, _ := os.ReadFile(filepath.Join(im.Path, "arch")); string(b) != arch {
			t.Errorf("Pull(%s, linux/%s): arch file = %q, want %q", ref, arch, b, arch)
		}
	}
	if _, _, err := s.Pull(context.Background(), ref.String(), v1.Platform{OS: "linux", Architecture: "s390x"}); err == nil {
		t.Errorf("Pull(linux/s390x) succeeded, want no matching image")
	}
}

func TestIncremental(t *testing.T) {
	s, _ := newStore(t)
	var applied []string
	s.LayerApplied = func(chainID string, _ Stats) { applied = append(applied, chainID) }
	ctx := context.Background()
	base, upper := baseLayer(t), upperLayer(t)
	v1img := imageOf(t, base, upper)
	v2img := imageOf(t, base, upper, layerOf(t, []ent{{name: "etc/version", body: "2"}}))
	v3img := imageOf(t, base, layerOf(t, []ent{{name: "etc/version", body: "3"}}))

	steps := []struct {
		img      v1.Image
		name     string
		newLayer int
	}{{v1img, "app:1", 2}, {v2img, "app:2", 1}, {v3img, "app:3", 1}, {v2img, "app:2b", 0}}
	for _, st := range steps {
		applied = nil
		im, stats, err := s.Install(ctx, st.img, st.name)
		if err != nil {
			t.Fatalf("Install(%s): %v", st.name, err)
		}
		if len(applied) != st.newLayer || stats.Layers != st.newLayer {
			t.Errorf("Install(%s) applied %d layers (stats %d), want %d", st.name, len(applied), stats.Layers, st.newLayer)
		}
		if ro, err := btrfsioctl.ReadOnly(im.Path); err != nil || !ro {
			t.Errorf("image %s read-only = %v, %v, want true", st.name, ro, err)
		}
	}
	if got := len(ls(t, filepath.Join(s.Dir, "layers"))); got != 4 {
		t.Errorf("layers cached = %d, want 4 (base, base+upper, +v2, +v3)", got)
	}
	im3, _ := s.Get("app:3")
	if b, _ := os.ReadFile(filepath.Join(im3.Path, "etc/version")); string(b) != "3" {
		t.Errorf("app:3 etc/version = %q, want 3", b)
	}

	// rm keeps the layers until gc; gc then drops what no image uses.
	if err := s.Remove("app:3"); err != nil {
		t.Fatal(err)
	}
	removed, err := s.GC()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || !strings.HasPrefix(removed[0], "layers/") {
		t.Errorf("GC() = %v, want the one layer only app:3 used", removed)
	}
	if err := s.Remove("app:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("app:2b"); err != nil {
		t.Errorf("Get(app:2b) after removing the other name: %v", err)
	}
	list, _ := s.List()
	if len(list) != 2 {
		t.Errorf("List() = %d images, want 2", len(list))
	}
}

func TestRootAndInterrupted(t *testing.T) {
	s, mnt := newStore(t)
	img := imageOf(t, baseLayer(t))
	if _, _, err := s.Install(context.Background(), img, "base:1"); err != nil {
		t.Fatal(err)
	}
	root, err := s.Root("base:1", "host")
	if err != nil {
		t.Fatalf("Root: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("box\n"), 0o644); err != nil {
		t.Errorf("root is not writable: %v", err)
	}
	if _, err := s.Root("base:1", "host"); err == nil {
		t.Errorf("Root(host) twice succeeded, want exists error")
	}
	top, rel, err := TopLevel(root)
	if err != nil || top != mnt || rel != "images/roots/host" {
		t.Errorf("TopLevel(%s) = %q, %q, %v, want %q, images/roots/host", root, top, rel, err, mnt)
	}

	// Simulate an interrupted install: a .tmp-* subvolume and a stray
	// directory; the next operation removes both.
	for _, p := range []string{"layers/.tmp-dead", "images/.tmp-dead"} {
		if err := btrfsioctl.Create(filepath.Join(s.Dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	btrfsioctl.SetReadOnly(filepath.Join(s.Dir, "images/.tmp-dead"), true)
	os.Mkdir(filepath.Join(s.Dir, ".tmp-dir"), 0o755)
	if _, err := s.GC(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "layers", "images"} {
		for _, n := range ls(t, filepath.Join(s.Dir, d)) {
			if strings.HasPrefix(n, ".tmp-") {
				t.Errorf("%s left after the next operation", filepath.Join(d, n))
			}
		}
	}
}

// isDynamic reports whether the ELF executable path asks for a program
// interpreter (a dynamic loader).
func isDynamic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// TestBusyboxRoot unpacks a busybox-static root and runs a shell in it.
func TestBusyboxRoot(t *testing.T) {
	bb := testenv.Tool(t, "busybox")
	if isDynamic(t, bb) {
		testenv.Missing(t, "%s is dynamically linked: install busybox-static", bb)
	}
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	ents := []ent{
		{name: "bin/", typ: tar.TypeDir}, {name: "bin/busybox", body: string(body), mode: 0o755},
		{name: "etc/", typ: tar.TypeDir}, {name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	for _, applet := range []string{"sh", "ls", "cat", "echo", "id"} {
		ents = append(ents, ent{name: "bin/" + applet, typ: tar.TypeSymlink, link: "busybox"})
	}
	s, _ := newStore(t)
	if _, _, err := s.Install(context.Background(), imageOf(t, layerOf(t, ents)), "busybox:static"); err != nil {
		t.Fatal(err)
	}
	root, err := s.Root("busybox:static", "")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(root) != "busybox-static" {
		t.Errorf("Root name = %s, want busybox-static", filepath.Base(root))
	}
	cmd := exec.Command("/bin/sh", "-c", "echo hello > /tmp/x && cat /tmp/x /etc/passwd && id -u")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	got, err := cmd.CombinedOutput()
	want := "hello\nroot:x:0:0:root:/root:/bin/sh\n0\n"
	if err != nil || string(got) != want {
		t.Errorf("chroot %s sh = %q, %v, want %q", root, got, err, want)
	}
}

func TestChainIDs(t *testing.T) {
	h := func(s string) v1.Hash { v, _ := v1.NewHash(s); return v }
	a := "sha256:" + strings.Repeat("a", 64)
	b := "sha256:" + strings.Repeat("b", 64)
	got := ChainIDs([]v1.Hash{h(a), h(b)})
	// sha256("sha256:aaa... sha256:bbb...")
	want := []string{a, "sha256:" + sha256hex(a+" "+b)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ChainIDs diff (-want +got):\n%s", diff)
	}
}

// TestCanceledInstall stops an install between its layers: the install
// fails and leaves nothing, not even the layer it finished.
func TestCanceledInstall(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.LayerApplied = func(string, Stats) { cancel() }
	_, _, err := s.Install(ctx, imageOf(t, baseLayer(t), upperLayer(t)), "app:1")
	if err == nil || ctx.Err() == nil {
		t.Fatalf("Install with a canceled context = %v, want an error", err)
	}
	assertEmptyStore(t, s)
}

// TestCrossLayerHardlink: a hard link in an upper layer to a lower-layer
// file shares its inode, and replacing a hard-linked file breaks the link.
func TestCrossLayerHardlink(t *testing.T) {
	s, _ := newStore(t)
	img := imageOf(t,
		layerOf(t, []ent{{name: "a", body: "A"}, {name: "c", body: "C"}, {name: "d", typ: tar.TypeLink, link: "c"}}),
		layerOf(t, []ent{{name: "b", typ: tar.TypeLink, link: "a"}, {name: "c", body: "new C"}}))
	im, _, err := s.Install(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	tree := snapshotTree(t, im.Path)
	if tree["a"].Links != "a,b" || tree["b"].Links != "a,b" {
		t.Errorf("links of a, b = %q, %q, want a,b", tree["a"].Links, tree["b"].Links)
	}
	if tree["c"].Links != "" || tree["d"].Links != "" {
		t.Errorf("links of c, d = %q, %q, want none after c was replaced", tree["c"].Links, tree["d"].Links)
	}
	if b, _ := os.ReadFile(filepath.Join(im.Path, "d")); string(b) != "C" {
		t.Errorf("d = %q, want the old content C", b)
	}
}
