package bootdisk

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"initos/authenticode"
	"initos/internal/testenv"
)

// Debian's OVMF test keys: OVMFSecureBoot's variable store enrolls this
// certificate in db; its private key's password is "snakeoil".
const (
	SnakeoilKey  = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	SnakeoilCert = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

// SecureBootKey is a db key and its certificate.
type SecureBootKey struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

var snakeoil struct {
	once sync.Once
	key  *SecureBootKey
	err  error
}

// Snakeoil returns OVMF's snakeoil db key (decrypted with openssl once).
func Snakeoil(t testing.TB) *SecureBootKey {
	t.Helper()
	testenv.Tool(t, "openssl")
	for _, p := range []string{SnakeoilKey, SnakeoilCert} {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, "%s (package ovmf): %v", p, err)
		}
	}
	snakeoil.once.Do(func() { snakeoil.key, snakeoil.err = loadSnakeoil() })
	if snakeoil.err != nil {
		t.Fatal(snakeoil.err)
	}
	return snakeoil.key
}

func loadSnakeoil() (*SecureBootKey, error) {
	dir, err := os.MkdirTemp("", "snakeoil")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	plain := filepath.Join(dir, "key.pem")
	if out, err := exec.Command("openssl", "pkey", "-in", SnakeoilKey, "-passin", "pass:snakeoil", "-out", plain).CombinedOutput(); err != nil {
		return nil, &exec.ExitError{Stderr: out}
	}
	keyPEM, err := os.ReadFile(plain)
	if err != nil {
		return nil, err
	}
	key, err := authenticode.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(SnakeoilCert)
	if err != nil {
		return nil, err
	}
	certs, err := authenticode.ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	return &SecureBootKey{Key: key.(*rsa.PrivateKey), Cert: certs[0]}, nil
}

// PCRKey returns the test's PCR policy signing key (RSA 2048, one per
// test process): what `uki build --pcr-private-key` gets on a build machine.
var PCRKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})
