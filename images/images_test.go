// Package images holds the recipes of InitOS's images (see
// docs/images.md); its tests build them (images/NAME/build.sh, cached) and
// check what they hold.
package images

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"initos/images/imagestest"
)

// entry is one file of an image's root.
type entry struct {
	typ  byte
	mode int64
	size int64
	link string
	body string // regular files up to 4 KiB
}

// rootOf reads every layer of the image ref (in order, no whiteouts: the
// images are one layer) and returns its entries by path, and the layer
// bytes (compressed).
func rootOf(t *testing.T, ref string) (map[string]entry, int64) {
	t.Helper()
	dir, tag := imagestest.Layout(ref)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] != tag {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		root, size := map[string]entry{}, int64(0)
		for _, l := range layers {
			n, _ := l.Size()
			size += n
			readLayer(t, l.Uncompressed, root)
		}
		return root, size
	}
	t.Fatalf("%s: no image tagged %s", dir, tag)
	return nil, 0
}

func readLayer(t *testing.T, open func() (io.ReadCloser, error), root map[string]entry) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		e := entry{typ: h.Typeflag, mode: h.Mode, size: h.Size, link: h.Linkname}
		if h.Typeflag == tar.TypeReg && h.Size <= 4096 {
			b, _ := io.ReadAll(tr)
			e.body = string(b)
		}
		root[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = e
	}
}

// glob returns the paths of root matching a filepath.Match pattern (only
// regular files with files set).
func glob(root map[string]entry, pattern string, files bool) []string {
	var out []string
	for p, e := range root {
		if ok, _ := filepath.Match(pattern, p); ok && (!files || e.typ == tar.TypeReg) {
			out = append(out, p)
		}
	}
	return out
}

// check is one expectation on an image's root.
type check struct {
	what    string
	pattern string
	present bool
	files   bool // only regular files count (not dangling links)
}

func runChecks(t *testing.T, name string, root map[string]entry, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := glob(root, c.pattern, c.files); (len(got) > 0) != c.present {
			t.Errorf("%s: %s: glob(%s) = %v, want present=%v", name, c.what, c.pattern, got, c.present)
		}
	}
}

// common are the expectations of every Debian image.
var common = []check{
	{"initos for upgrades and bless", "usr/local/bin/initos", true, false},
	{"no manual pages", "usr/share/man/man1/*", false, false},
	{"no changelogs", "usr/share/doc/*/changelog*", false, true},
	{"copyright files kept", "usr/share/doc/*/copyright", true, false},
	{"no translations", "usr/share/locale/*/LC_MESSAGES/*", false, false},
	{"no apt lists", "var/lib/apt/lists/*_Packages", false, false},
	{"no downloaded packages", "var/cache/apt/archives/*.deb", false, false},
}

// noPerl: merged /usr by mmdebstrap's hook, not the usrmerge package,
// which pulls in perl (debianui has perl anyway: tigervncserver is a perl
// script).
var noPerl = check{"merged /usr without the usrmerge package (and its perl)", "usr/lib/*-linux-gnu/libperl.so*", false, false}

func logSize(t *testing.T, name string, root map[string]entry, layer int64) {
	var total int64
	for _, e := range root {
		total += e.size
	}
	t.Logf("%s: %d entries, %.1f MiB of files, layer %.1f MiB compressed", name, len(root), float64(total)/(1<<20), float64(layer)/(1<<20))
}

func TestDebianhost(t *testing.T) {
	root, layer := rootOf(t, imagestest.Build(t, "debianhost"))
	logSize(t, "debianhost", root, layer)
	runChecks(t, "debianhost", root, append(common, []check{
		noPerl,
		{"systemd as init", "usr/sbin/init", true, false},
		{"openssh-server", "usr/sbin/sshd", true, false},
		{"btrfs-progs", "usr/bin/btrfs", true, false},
		{"the kernel", "boot/vmlinuz-*", true, false},
		{"its modules and index", "usr/lib/modules/*/modules.dep", true, false},
		{"free firmware", "usr/lib/firmware/*", true, false},
		{"no initramfs of the image's own", "boot/initrd.img*", false, false},
		{"no dangling initrd.img link", "initrd.img", false, false},
		{"no SSH host keys in a shared image", "etc/ssh/ssh_host_*", false, false},
		{"bless after multi-user", "etc/systemd/system/multi-user.target.wants/initos-bless.service", true, false},
		{"host keys on first boot", "etc/systemd/system/ssh.service.requires/initos-ssh-hostkeys.service", true, false},
		{"DHCP with networkd", "etc/systemd/system/multi-user.target.wants/systemd-networkd.service", true, false},
	}...))
	for link, want := range map[string]string{
		"etc/systemd/system/default.target":                   "/lib/systemd/system/multi-user.target",
		"etc/systemd/system/systemd-pcrphase.service":         "/dev/null",
		"etc/systemd/system/systemd-pcrphase-sysinit.service": "/dev/null",
	} {
		if e := root[link]; e.typ != tar.TypeSymlink || e.link != want {
			t.Errorf("debianhost: %s = %+v, want a symlink to %s", link, e, want)
		}
	}
	if e := root["etc/machine-id"]; e.typ != tar.TypeReg || e.size != 0 {
		t.Errorf("debianhost: /etc/machine-id = %+v, want an empty file (each host makes its own)", e)
	}
	if e := root["etc/hostname"]; e.body != "debianhost\n" {
		t.Errorf("debianhost: /etc/hostname = %q, want debianhost", e.body)
	}
	if e := root["usr/local/bin/initos"]; e.mode&0o777 != 0o755 {
		t.Errorf("debianhost: initos mode %o, want 0755", e.mode)
	}
	unit := root["etc/systemd/system/initos-bless.service"].body
	for _, want := range []string{"After=boot-complete.target multi-user.target", "ExecStart=/usr/local/bin/initos bless"} {
		if !strings.Contains(unit, want) {
			t.Errorf("initos-bless.service lacks %q:\n%s", want, unit)
		}
	}
}

func TestRecovery(t *testing.T) {
	root, layer := rootOf(t, imagestest.Build(t, "recovery"))
	logSize(t, "recovery", root, layer)
	runChecks(t, "recovery", root, append(common, []check{
		noPerl,
		{"busybox", "usr/bin/busybox", true, false},
		{"busybox applets where Debian has none", "usr/local/bin/vi", true, false},
		{"mkfs.btrfs", "usr/sbin/mkfs.btrfs", true, false},
		{"no systemd (initos-init runs the installer)", "usr/lib/systemd/systemd", false, false},
		{"no kernel", "boot/vmlinuz-*", false, false},
	}...))
}

func TestDebianui(t *testing.T) {
	root, layer := rootOf(t, imagestest.Build(t, "debianui"))
	logSize(t, "debianui", root, layer)
	runChecks(t, "debianui", root, append(common, []check{
		{"debianhost's base", "usr/sbin/sshd", true, false},
		{"the kernel", "boot/vmlinuz-*", true, false},
		{"TigerVNC", "usr/bin/Xtigervnc", true, false},
		{"noVNC", "usr/share/novnc/vnc.html", true, false},
		{"websockify", "usr/bin/websockify", true, false},
		{"Xfce", "usr/bin/startxfce4", true, false},
		{"VNC units", "etc/systemd/system/multi-user.target.wants/initos-vnc.service", true, false},
		{"noVNC unit", "etc/systemd/system/multi-user.target.wants/initos-novnc.service", true, false},
		{"desktop unit", "etc/systemd/system/multi-user.target.wants/initos-desktop.service", true, false},
		{"no KasmVNC unit enabled", "etc/systemd/system/multi-user.target.wants/initos-kasmvnc.service", false, false},
		{"the desktop user", "home/dev", true, false},
	}...))
	if e := root["etc/hostname"]; e.body != "debianui\n" {
		t.Errorf("debianui: /etc/hostname = %q, want debianui", e.body)
	}
}

// TestImportReproducible writes the recovery image again into a new
// layout (build.sh --out: the cached root tar imported again) and checks
// that the manifest is byte-identical to the cached one. (The root itself
// is mmdebstrap's, reproducible with SOURCE_DATE_EPOCH; rebuilding it
// takes minutes, see docs/images.md.)
func TestImportReproducible(t *testing.T) {
	ref := imagestest.Build(t, "recovery")
	out := filepath.Join(t.TempDir(), "oci")
	cmd := exec.Command(filepath.Join(imagestest.RepoRoot(), "images/recovery/build.sh"), "--out", "oci:"+out+":again")
	cmd.Stderr = os.Stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh --out: %v", err)
	}
	if strings.TrimSpace(string(got)) != "oci:"+out+":again" {
		t.Errorf("build.sh --out printed %q, want oci:%s:again", got, out)
	}
	digest := func(dir, tag string) string {
		idx, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		for _, d := range im.Manifests {
			if d.Annotations["org.opencontainers.image.ref.name"] == tag {
				return d.Digest.String()
			}
		}
		t.Fatalf("%s: no %s", dir, tag)
		return ""
	}
	dir, tag := imagestest.Layout(ref)
	if a, b := digest(dir, tag), digest(out, "again"); a != b {
		t.Errorf("recovery imported twice: manifest %s then %s, want the same bytes", a, b)
	}
}
