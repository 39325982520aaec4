// Package installtest builds what install tests and benchmarks install:
// owner Secure Boot keys, a signed UKI on the repository's systemd-stub, a
// modules image (mksquashfs + verity appended), and a small OCI root image.
package installtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"initos/authenticode"
	"initos/efivar"
	"initos/internal/testenv"
	"initos/pecoff"
	"initos/verity"
)

// Release is the kernel release of the test artifacts.
const Release = "6.1.0-test-amd64"

// Time is the fixed time of certificates and image entries.
var Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Fixture holds the boot artifacts, keys and root image of a test
// install, in one directory (install.json paths are relative to it).
type Fixture struct {
	Dir     string
	UKI     string            // signed UKI
	Modules string            // modules-<release>.sqfs with verity appended
	Keys    string            // owner keys: db.crt, PK.auth, KEK.auth, db.auth
	Image   string            // oci:DIR
	Owner   *efivar.OwnerKeys // the keys behind Keys
	Root    string            // verity root hash of Modules
}

// New builds the artifacts in dir (mksquashfs makes the modules
// image's squashfs; everything else is Go).
func New(t testing.TB, dir string) *Fixture {
	t.Helper()
	mksquashfs := testenv.Tool(t, "mksquashfs")
	fx := &Fixture{Dir: dir, Keys: filepath.Join(dir, "keys")}
	fx.writeKeys(t)
	fx.UKI = filepath.Join(dir, "initos.efi")
	fx.WriteUKI(t, fx.UKI, fx.Owner.DB)
	fx.Modules = filepath.Join(dir, "modules-"+Release+".sqfs")
	fx.Root = writeModules(t, mksquashfs, fx.Modules)
	fx.Image = "oci:" + filepath.Join(dir, "image")
	writeImage(t, filepath.Join(dir, "image"))
	return fx
}

func (fx *Fixture) writeKeys(t testing.TB) {
	t.Helper()
	k, err := efivar.GenerateOwnerKeys(efivar.MustParseGUID("11111111-2222-3333-4444-555555555555"), "InitOS install test", Time)
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.Payloads(Time)
	if err != nil {
		t.Fatal(err)
	}
	fx.Owner = k
	files := map[string][]byte{
		"db.crt":  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.DB.Cert.Raw}),
		"PK.auth": p.PK, "KEK.auth": p.KEK, "db.auth": p.DB,
	}
	WriteFiles(t, fx.Keys, files)
}

// WriteUKI builds a small UKI on the repository's systemd-stub and signs
// it with kp.
func (fx *Fixture) WriteUKI(t testing.TB, path string, kp efivar.KeyPair) {
	t.Helper()
	fx.WriteUKICmdline(t, path, kp, "console=ttyS0")
}

// WriteUKICmdline is WriteUKI with the given kernel command line (the
// installer's has initos.mode=install).
func (fx *Fixture) WriteUKICmdline(t testing.TB, path string, kp efivar.KeyPair, cmdline string) {
	t.Helper()
	stub, err := os.ReadFile(stubPath())
	if err != nil {
		t.Fatal(err)
	}
	img, err := pecoff.BuildUKI(stub, pecoff.UKI{Linux: bytes.Repeat([]byte("kernel"), 50000), Uname: []byte(Release),
		OSRelease: []byte("ID=initos-test\n"), Cmdline: []byte(cmdline)})
	if err != nil {
		t.Fatal(err)
	}
	if err := authenticode.Sign(img, kp.Key, kp.Cert, authenticode.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeModules makes a squashfs of a small module tree with mksquashfs
// and appends its verity tree at the 4 KiB aligned end; it returns the
// root hash (hex).
func writeModules(t testing.TB, mksquashfs, path string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "modules")
	files := map[string][]byte{"kernel/drivers/test.ko": bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 40000), "modules.dep": []byte("kernel/drivers/test.ko:\n")}
	WriteFiles(t, src, files)
	return WriteModulesFrom(t, mksquashfs, path, src)
}

// WriteModulesFrom makes a modules image of the tree src: mksquashfs,
// then its verity tree at the 4 KiB aligned end; it returns the root hash.
func WriteModulesFrom(t testing.TB, mksquashfs, path, src string) string {
	t.Helper()
	cmd := exec.Command(mksquashfs, src, path, "-noappend", "-quiet", "-all-root", "-mkfs-time", "0", "-all-time", "0")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SOURCE_DATE_EPOCH=") { // mksquashfs refuses it with -mkfs-time
			cmd.Env = append(cmd.Env, e)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	end, err := squashfsEnd(f)
	if err != nil {
		t.Fatal(err)
	}
	off := (end + 4095) &^ 4095
	if err := f.Truncate(off); err != nil {
		t.Fatal(err)
	}
	res, err := verity.Format(f, off, f, off, verity.Params{})
	if err != nil {
		t.Fatal(err)
	}
	return res.RootHashHex()
}

// writeImage writes an OCI layout holding a one-layer root image.
func writeImage(t testing.TB, dir string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{{"etc/", ""}, {"etc/os-release", "ID=initos-test-root\n"}, {"sbin/", ""}, {"sbin/init", "#!/bin/sh\necho hello\n"}} {
		h := &tar.Header{Name: e.name, Mode: 0o755, ModTime: Time, Typeflag: tar.TypeDir}
		if e.body != "" {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "initos/test-root:1"})); err != nil {
		t.Fatal(err)
	}
}

func WriteFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// HashFile returns a SHA-256 digest of a file or block device: of the
// offset and content of every 1 MiB chunk that is not all zeros (the same
// digest as of the whole content, for content of the same size, and far
// cheaper on mostly empty test disks).
func HashFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	buf, zero := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := io.ReadFull(f, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			fmt.Fprintf(h, "%d:%d:", off, n)
			h.Write(buf[:n])
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			fmt.Fprintf(h, "size %d", off+int64(n))
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// stubPath finds the repository's systemd-stub test copy from the
// package directory of the running test.
func stubPath() string {
	for _, p := range []string{"../pecoff/testdata/linuxx64.efi.stub", "../../pecoff/testdata/linuxx64.efi.stub"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "../pecoff/testdata/linuxx64.efi.stub"
}

// squashfsEnd reads bytes_used from a squashfs superblock.
func squashfsEnd(r io.ReaderAt) (int64, error) {
	var sb [48]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return 0, err
	}
	if string(sb[:4]) != "hsqs" {
		return 0, fmt.Errorf("not a squashfs image")
	}
	return int64(binary.LittleEndian.Uint64(sb[40:])), nil
}

// WithLibraries returns a program and the shared libraries ldd lists for
// it (and for extra, libraries it loads with dlopen), as guest path ->
// host file (symbolic links resolved), to copy into a VM's initramfs: the
// guest path of the program is its host path.
func WithLibraries(t testing.TB, prog string, extra ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range append([]string{prog}, extra...) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		m[p] = real
		out := testenv.Run(t, testenv.Tool(t, "ldd"), p)
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			var lib string
			switch {
			case len(f) >= 3 && f[1] == "=>":
				lib = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				lib = f[0]
			default:
				continue
			}
			real, err := filepath.EvalSymlinks(lib)
			if err != nil {
				t.Fatal(err)
			}
			m[lib] = real
		}
	}
	return m
}

// HashOffset returns where a modules image's verity tree starts: the end
// of its squashfs, rounded up to 4 KiB.
func HashOffset(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	end, err := squashfsEnd(f)
	return (end + 4095) &^ 4095, err
}
