// Package buildtest makes the inputs of build tests: synthetic host
// images (OCI layouts of tar layers, with a fake kernel), signing keys as
// `initos keys create` writes them, and the output directory read back.
package buildtest

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"initos/bootconfig"
	"initos/initrd"
	"initos/internal/testenv"
	"initos/internal/vmtest"
)

// Ent is a tar Entry of a test layer.
type Ent struct {
	name, body, link string
	typ              byte // 0: regular file
}

// File, Dir, Symlink and Hardlink make tar entries.
func File(name, body string) Ent  { return Ent{name: name, body: body} }
func Dir(name string) Ent         { return Ent{name: name, typ: tar.TypeDir} }
func Symlink(name, to string) Ent { return Ent{name: name, link: to, typ: tar.TypeSymlink} }
func Hardlink(name, to string) Ent {
	return Ent{name: name, link: to, typ: tar.TypeLink}
}

// Time is the entries' modification time.
var Time = time.Unix(1700000000, 0)

// Layer makes a gzip layer of Entries.
func Layer(t testing.TB, ents []Ent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: Time, Uid: 1000, Gid: 1000}
		switch e.typ {
		case 0:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// WriteImage writes an amd64 image of layers into a new OCI layout and
// returns its source string.
func WriteImage(t testing.TB, layers ...[]Ent) string { return WriteImageArch(t, "amd64", layers...) }

// WriteImageArch is WriteImage for an architecture (the config's).
func WriteImageArch(t testing.TB, arch string, layers ...[]Ent) string {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, Ents := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, Layer(t, Ents)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "host"})); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":host"
}

// FakeKernel is an EFI PE image that is never run: the stub with its
// .sbat section renamed (BuildUKI would merge a kernel's SBAT).
func FakeKernel(t testing.TB) []byte {
	return bytes.Replace(Stub(t), []byte(".sbat\x00\x00\x00"), []byte(".fake\x00\x00\x00"), 1)
}

// Stub returns Debian's x86-64 systemd-stub.
func Stub(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(StubAMD64)
	if err != nil {
		testenv.Missing(t, "systemd-stub (package systemd-boot-efi): %v", err)
	}
	return b
}

// The releases of HostLayers and the newer one's module directory.
const (
	Rel9  = "6.1.0-9-amd64"
	Rel10 = "6.1.0-10-amd64"
	M10   = "usr/lib/modules/" + Rel10 + "/"
)

// HostLayers is a two-layer host image: two kernels (the newer is taken),
// a module replaced, one deleted (whiteout), a directory emptied (opaque),
// firmware with a hard link, symlinks, os-release in both places.
func HostLayers(t testing.TB) [][]Ent {
	k := string(FakeKernel(t))
	return [][]Ent{{
		Dir("boot"), File("boot/vmlinuz-"+Rel9, k), File("boot/vmlinuz-"+Rel10, k), Symlink("boot/vmlinuz", "vmlinuz-"+Rel10),
		Dir("etc"), File("etc/os-release", "ID=testhost\n"),
		File("usr/bin/x", "a program"),
		File("usr/lib/modules/"+Rel9+"/modules.dep", "kernel/a.ko:\n"),
		File("usr/lib/modules/"+Rel9+"/kernel/a.ko", "a9"),
		Dir(M10), Symlink(M10+"build", "/usr/src/linux-headers-"+Rel10),
		File(M10+"modules.dep", "kernel/fs/vfat.ko: kernel/fs/fat.ko\nkernel/fs/fat.ko:\nkernel/drivers/old.ko:\nkernel/lib/gone/x.ko:\n"),
		File(M10+"modules.alias", "alias fs-vfat vfat\n"),
		File(M10+"kernel/fs/vfat.ko", "vfat v1"), File(M10+"kernel/fs/fat.ko", "fat"),
		File(M10+"kernel/drivers/old.ko", "old"), File(M10+"kernel/lib/gone/x.ko", "x"),
		Symlink(M10+"kernel/fs/link.ko", "fat.ko"),
		File("usr/lib/firmware/a/fw.bin", "firmware"), Hardlink("usr/lib/firmware/a/fw-link.bin", "usr/lib/firmware/a/fw.bin"),
		File("usr/lib/firmware/b/old.bin", "old firmware"),
	}, {
		File(M10+"kernel/fs/vfat.ko", "vfat v2"),
		File(M10+"kernel/drivers/.wh.old.ko", ""),
		Dir(M10 + "kernel/lib/gone"), File(M10+"kernel/lib/gone/.wh..wh..opq", ""),
		Dir("usr/lib/firmware/b"), File("usr/lib/firmware/b/.wh..wh..opq", ""),
		File("usr/lib/os-release", "ID=lower\n"),
	}}
}

// Keys are a test db key with its certificate and a PCR policy key.
type Keys struct {
	DB   *rsa.PrivateKey
	Cert *x509.Certificate
	PCR  *rsa.PrivateKey
}

var testKeys = sync.OnceValues(func() (*Keys, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "InitOS test db"},
		NotBefore: Time, NotAfter: Time.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &Keys{DB: k, Cert: cert, PCR: pk}, err
})

// TestKeys returns the test keys (made once per process).
func TestKeys(t testing.TB) *Keys {
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// StubAMD64 is Debian's x86-64 systemd-stub.
const StubAMD64 = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// WriteKeys writes the test keys as `initos keys create` and openssl do.
func WriteKeys(t testing.TB, dir string) {
	k := TestKeys(t)
	key, _ := x509.MarshalPKCS8PrivateKey(k.DB)
	pcr, _ := x509.MarshalPKCS8PrivateKey(k.PCR)
	os.MkdirAll(dir, 0o700)
	for name, b := range map[string][]byte{
		"db.key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"pcr.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pcr}),
		"db.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Cert.Raw}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// ReadOut returns the files of dir, by name.
func ReadOut(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = b
	}
	return out
}

// KernelLayer is a layer with kernel k (/boot/vmlinuz-<release>), its
// module index and the modules that initrd.DefaultModules(goarch) and
// extra (names or aliases, skipped when k lacks them) resolve to, and an
// os-release: a small host image of a real kernel.
func KernelLayer(t testing.TB, k vmtest.Kernel, goarch string, extra ...string) []Ent {
	names := append(initrd.DefaultModules(goarch, bootconfig.ModeBoot), extra...)
	optional := map[string]bool{}
	for _, n := range names {
		optional[n] = true
	}
	_, mods, _, err := initrd.ResolveModules(k.ModulesDir, names, optional)
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	dir := "usr/lib/modules/" + k.Version + "/"
	ents := []Ent{File("boot/vmlinuz-"+k.Version, read(k.Image)), File("etc/os-release", "ID=debian\n")}
	for _, idx := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"} {
		if _, err := os.Stat(filepath.Join(k.ModulesDir, idx)); err == nil {
			ents = append(ents, File(dir+idx, read(filepath.Join(k.ModulesDir, idx))))
		}
	}
	for _, m := range mods {
		if !m.Builtin {
			ents = append(ents, File(dir+m.Path, read(filepath.Join(k.ModulesDir, m.Path))))
		}
	}
	if len(mods) == 0 {
		t.Fatal("no arm64 module resolved")
	}
	return ents
}
