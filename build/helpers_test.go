package build

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"initos/initramfs"
	bt "initos/internal/buildtest"
)

type ent = bt.Ent

var (
	file, symlink, hardlink = bt.File, bt.Symlink, bt.Hardlink
	layerOf                 = bt.Layer
	writeImage              = bt.WriteImage
	fakeKernel, stub        = bt.FakeKernel, bt.Stub
	hostLayers              = bt.HostLayers
	readOut                 = bt.ReadOut
	testTime                = bt.Time
)

const (
	rel9  = bt.Rel9
	rel10 = bt.Rel10
	m10   = bt.M10
)

// keys returns the test keys.
func keys(t testing.TB) *Keys {
	k := bt.TestKeys(t)
	return &Keys{DBKey: k.DB, DBCert: k.Cert, PCRKey: k.PCR}
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

type x509Cert = x509.Certificate

func initramfsReader(b []byte) *initramfs.Reader { return initramfs.NewReader(bytes.NewReader(b)) }

// readKeysCert returns the test db certificate, PEM.
func readKeysCert(t testing.TB) []byte {
	dir := t.TempDir()
	bt.WriteKeys(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "db.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
