// Package updatetest makes the fixtures of A/B upgrade tests and
// benchmarks: test Secure Boot keys, signed UKIs on systemd-stub whose
// initrd carries an InitOS config, and modules images (data with a
// dm-verity tree appended) matching that config. It has no dependency on
// package update, so update's own tests use it too.
package updatetest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"initos/authenticode"
	"initos/initramfs"
	"initos/pecoff"
	"initos/verity"
)

// Kernel is the kernel release of the test UKIs.
const Kernel = "6.1.0-test-amd64"

// repo is the repository root (this file is internal/updatetest/updatetest.go).
var repo = func() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(f), "..", "..")
}()

// fixture finds a file of the repository: from the source tree, or,
// in a VM guest (where the tests run in a copy of their package directory
// next to the fixtures vmtest copied in), relative to "..".
func fixture(rel string) string {
	if p := filepath.Join(repo, rel); exists(p) {
		return p
	}
	return filepath.Join("..", rel)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Stub is the systemd-stub fixture of package pecoff.
func Stub() string { return fixture("pecoff/testdata/linuxx64.efi.stub") }

// Signer is a Secure Boot db key.
type Signer struct {
	Key  crypto.Signer
	Cert *x509.Certificate
}

// LoadSigner loads the authenticode test key name ("db", "other").
func LoadSigner(t testing.TB, name string) Signer {
	t.Helper()
	dir := fixture("authenticode/testdata")
	k, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := authenticode.ParsePrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := authenticode.ParseCertificates(c)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{key, certs[0]}
}

// ModulesImage is the config's description of a modules image.
type ModulesImage struct {
	File       string `json:"file,omitempty"`
	RootHash   string `json:"root_hash,omitempty"`
	Salt       string `json:"salt,omitempty"`
	DataSize   int64  `json:"data_size,omitempty"`
	HashOffset int64  `json:"hash_offset,omitempty"`
}

// Config is the part of the initrd config (package bootconfig) the test
// UKIs carry.
type Config struct {
	Version         int          `json:"version,omitempty"`
	Mode            string       `json:"mode"`
	SecurityVersion uint64       `json:"security_version"`
	BuildID         string       `json:"build_id,omitempty"`
	Kernel          string       `json:"kernel,omitempty"`
	ModulesImage    ModulesImage `json:"modules_image"`
}

// Build is a signed UKI and its modules image.
type Build struct {
	ID      string
	Config  Config
	UKI     []byte
	Modules []byte
}

// NewBuild makes a build signed by s (no signature when s.Key is nil)
// with security version v, and a modules image of size bytes (a multiple
// of 4096; 0 means 64 KiB).
func NewBuild(t testing.TB, s Signer, v uint64, id string, size int64) *Build {
	t.Helper()
	return NewBuildSized(t, s, v, id, size, 0)
}

// NewBuildSized is NewBuild with a .linux section of kernelSize bytes
// (0: a few bytes), for benchmarks at a real UKI's size.
func NewBuildSized(t testing.TB, s Signer, v uint64, id string, size, kernelSize int64) *Build {
	t.Helper()
	if size == 0 {
		size = 64 << 10
	}
	mods, m := MakeModules(t, size, id)
	b := &Build{ID: id, Modules: mods, Config: Config{Version: 1, Mode: "boot", SecurityVersion: v, BuildID: id, Kernel: Kernel, ModulesImage: m}}
	var linux []byte
	if kernelSize > 0 {
		linux, _ = MakeModules(t, kernelSize, "kernel"+id)
		linux = linux[:kernelSize]
	}
	b.UKI = makeUKI(t, s, b.Config, linux)
	return b
}

// MakeUKI builds a UKI on the stub whose initrd holds cfg (JSON) at
// /etc/initos/initrd.json (none when cfg is nil), signed by s.
func MakeUKI(t testing.TB, s Signer, cfg any) []byte {
	t.Helper()
	return makeUKI(t, s, cfg, nil)
}

func makeUKI(t testing.TB, s Signer, cfg any, linux []byte) []byte {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var a initramfs.Archive
	if cfg != nil {
		a.AddDir("etc", 0o755)
		a.AddDir("etc/initos", 0o755)
		a.AddFile("etc/initos/initrd.json", 0o644, raw)
	}
	a.AddFile("init", 0o755, []byte("#!init"))
	var rd bytes.Buffer
	if err := a.WriteTo(&rd, initramfs.Zstd); err != nil {
		t.Fatal(err)
	}
	stub, err := os.ReadFile(Stub())
	if err != nil {
		t.Fatal(err)
	}
	if linux == nil {
		linux = []byte("kernel " + string(raw))
	}
	img, err := pecoff.BuildUKI(stub, pecoff.UKI{Linux: linux, Initrd: rd.Bytes(),
		Uname: []byte(Kernel), Cmdline: []byte("console=ttyS0 panic=10")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Key != nil {
		if err := authenticode.Sign(img, s.Key, s.Cert, authenticode.SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return img.Bytes()
}

// MakeModules returns size bytes of data derived from seed with a verity
// tree appended at size, and its description.
func MakeModules(t testing.TB, size int64, seed string) ([]byte, ModulesImage) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "mods")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := make([]byte, size)
	h := sha256.Sum256([]byte(seed))
	for i := 0; i < len(data); i += 32 {
		h = sha256.Sum256(h[:])
		copy(data[i:], h[:])
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	salt := sha256.Sum256([]byte("salt" + seed))
	r, err := verity.Format(f, size, f, size, verity.Params{Salt: salt[:]})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b, ModulesImage{File: "initos/modules-" + Kernel + ".sqfs", RootHash: r.RootHashHex(),
		Salt: hex.EncodeToString(salt[:]), DataSize: size, HashOffset: size}
}

// Dir writes the build into a new directory (initos.efi and the modules
// image by its base name), a source `initos upgrade --from DIR` takes.
func (b *Build) Dir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	b.WriteDir(t, d)
	return d
}

// WriteDir writes the build into d.
func (b *Build) WriteDir(t testing.TB, d string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d, "initos.efi"), b.UKI, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, filepath.Base(b.Config.ModulesImage.File)), b.Modules, 0o644); err != nil {
		t.Fatal(err)
	}
}

// UKIFile and ModulesFile are the paths WriteDir uses under d.
func (b *Build) UKIFile(d string) string { return filepath.Join(d, "initos.efi") }

// ModulesFile is the modules image's path under d.
func (b *Build) ModulesFile(d string) string {
	return filepath.Join(d, filepath.Base(b.Config.ModulesImage.File))
}
