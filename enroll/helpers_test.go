package enroll

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// testPass is the passphrase of keyslot 0 of testVolume's volumes.
var testPass = []byte("passphrase")

// fastPBKDF keeps keyslot 0 cheap in tests.
var fastPBKDF = luks2.PBKDF{Type: "pbkdf2", Hash: "sha256", Iterations: 1000}

// testVolume formats a 20 MiB LUKS2 image (our luks2, pbkdf2) and returns
// it opened read-write with its header and volume key.
func testVolume(t *testing.T) (*os.File, *luks2.Header, *luks2.Secret) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "luks.img")
	if _, err := luks2.FormatFile(path, 20<<20, testPass, luks2.FormatOptions{PBKDF: fastPBKDF}); err != nil {
		t.Fatal(err)
	}
	return openVolume(t, path)
}

func openVolume(t *testing.T, path string) (*os.File, *luks2.Header, *luks2.Secret) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h, err := luks2.ReadHeader(f)
	if err != nil {
		t.Fatal(err)
	}
	vk, _, err := h.Unlock(f, testPass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vk.Destroy)
	return f, h, vk
}

// testTPM starts an swtpm and connects to it.
func testTPM(t *testing.T) (*swtpmtest.Swtpm, transport.TPMCloser) {
	t.Helper()
	sw := swtpmtest.Start(t)
	return sw, connect(t, sw)
}

func connect(t *testing.T, sw *swtpmtest.Swtpm) transport.TPMCloser {
	t.Helper()
	d, err := tpm2.ParseDevice(sw.Device())
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := tpm2.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	return tpm
}

// extend measures event into pcr (SHA-256 bank), like firmware would.
func extend(t *testing.T, tpm transport.TPM, pcr int, event string) {
	t.Helper()
	d := sha256.Sum256([]byte(event))
	if err := tpm2.ExtendPCR(tpm, tpm2.SHA256, pcr, d[:]); err != nil {
		t.Fatal(err)
	}
}

func readPCR(t *testing.T, tpm transport.TPM, pcr int) []byte {
	t.Helper()
	v, err := tpm2.ReadPCRs(tpm, tpm2.SHA256, []int{pcr})
	if err != nil {
		t.Fatal(err)
	}
	return v[pcr]
}
