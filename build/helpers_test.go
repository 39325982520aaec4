package build

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

	"initos/initramfs"
	"initos/internal/testenv"
)

// ent is a tar entry of a test layer.
type ent struct {
	name, body, link string
	typ              byte // 0: regular file
}

func file(name, body string) ent  { return ent{name: name, body: body} }
func dir(name string) ent         { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, to string) ent { return ent{name: name, link: to, typ: tar.TypeSymlink} }
func hardlink(name, to string) ent {
	return ent{name: name, link: to, typ: tar.TypeLink}
}

var testTime = time.Unix(1700000000, 0)

// layerOf makes a gzip layer of entries.
func layerOf(t testing.TB, ents []ent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: testTime, Uid: 1000, Gid: 1000}
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

// writeImage writes an amd64 image of layers into a new OCI layout and
// returns its source string.
func writeImage(t testing.TB, layers ...[]ent) string {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, ents := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, layerOf(t, ents)); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
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

// fakeKernel is an EFI PE image that is never run: the stub with its
// .sbat section renamed (BuildUKI would merge a kernel's SBAT).
func fakeKernel(t testing.TB) []byte {
	return bytes.Replace(stub(t), []byte(".sbat\x00\x00\x00"), []byte(".fake\x00\x00\x00"), 1)
}

// stub returns Debian's x86-64 systemd-stub.
func stub(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(StubFor("amd64"))
	if err != nil {
		testenv.Missing(t, "systemd-stub (package systemd-boot-efi): %v", err)
	}
	return b
}

const (
	rel9  = "6.1.0-9-amd64"
	rel10 = "6.1.0-10-amd64"
	m10   = "usr/lib/modules/" + rel10 + "/"
)

// hostLayers is a two-layer host image: two kernels (the newer is taken),
// a module replaced, one deleted (whiteout), a directory emptied (opaque),
// firmware with a hard link, symlinks, os-release in both places.
func hostLayers(t testing.TB) [][]ent {
	k := string(fakeKernel(t))
	return [][]ent{{
		dir("boot"), file("boot/vmlinuz-"+rel9, k), file("boot/vmlinuz-"+rel10, k), symlink("boot/vmlinuz", "vmlinuz-"+rel10),
		dir("etc"), file("etc/os-release", "ID=testhost\n"),
		file("usr/bin/x", "a program"),
		file("usr/lib/modules/"+rel9+"/modules.dep", "kernel/a.ko:\n"),
		file("usr/lib/modules/"+rel9+"/kernel/a.ko", "a9"),
		dir(m10), symlink(m10+"build", "/usr/src/linux-headers-"+rel10),
		file(m10+"modules.dep", "kernel/fs/vfat.ko: kernel/fs/fat.ko\nkernel/fs/fat.ko:\nkernel/drivers/old.ko:\nkernel/lib/gone/x.ko:\n"),
		file(m10+"modules.alias", "alias fs-vfat vfat\n"),
		file(m10+"kernel/fs/vfat.ko", "vfat v1"), file(m10+"kernel/fs/fat.ko", "fat"),
		file(m10+"kernel/drivers/old.ko", "old"), file(m10+"kernel/lib/gone/x.ko", "x"),
		symlink(m10+"kernel/fs/link.ko", "fat.ko"),
		file("usr/lib/firmware/a/fw.bin", "firmware"), hardlink("usr/lib/firmware/a/fw-link.bin", "usr/lib/firmware/a/fw.bin"),
		file("usr/lib/firmware/b/old.bin", "old firmware"),
	}, {
		file(m10+"kernel/fs/vfat.ko", "vfat v2"),
		file(m10+"kernel/drivers/.wh.old.ko", ""),
		dir(m10 + "kernel/lib/gone"), file(m10+"kernel/lib/gone/.wh..wh..opq", ""),
		dir("usr/lib/firmware/b"), file("usr/lib/firmware/b/.wh..wh..opq", ""),
		file("usr/lib/os-release", "ID=lower\n"),
	}}
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
		NotBefore: testTime, NotAfter: testTime.AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &Keys{DBKey: k, DBCert: cert, PCRKey: pk}, err
})

// keys returns the test keys.
func keys(t testing.TB) *Keys {
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKeys writes the test keys as `initos keys create` and openssl do.
func writeKeys(t testing.TB, dir string) {
	k := keys(t)
	key, _ := x509.MarshalPKCS8PrivateKey(k.DBKey)
	pcr, _ := x509.MarshalPKCS8PrivateKey(k.PCRKey)
	os.MkdirAll(dir, 0o700)
	for name, b := range map[string][]byte{
		"db.key":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}),
		"pcr.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pcr}),
		"db.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.DBCert.Raw}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// options returns build options for src into a new directory.
func options(t testing.TB, src string) Options {
	init := filepath.Join(t.TempDir(), "initos-init")
	if err := os.WriteFile(init, []byte("#!initos-init test binary\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k := keys(t)
	return Options{Source: src, OutDir: filepath.Join(t.TempDir(), "out"), Init: init, Cmdline: "console=ttyS0",
		SigningKey: k.DBKey, SigningCert: k.DBCert, PCRKey: k.PCRKey, Epoch: testTime}
}

// readOut returns the files of dir, by name.
func readOut(t testing.TB, dir string) map[string][]byte {
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

type x509Cert = x509.Certificate

func initramfsReader(b []byte) *initramfs.Reader { return initramfs.NewReader(bytes.NewReader(b)) }
