package build

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"initos/authenticode"
)

// Keys are the signing keys of a build.
type Keys struct {
	DBKey  crypto.Signer     // signs the UKI for Secure Boot
	DBCert *x509.Certificate // its certificate (in the machines' db)
	PCRKey crypto.Signer     // signs the PCR 11 policy; nil: none
}

// PCRKeyNone, as LoadKeys' pcrKey, builds without a signed PCR policy.
const PCRKeyNone = "none"

// LoadKeys reads the db key and certificate of a directory made by
// `initos keys create` (db.key, db.crt) and the PCR policy key pcrKey (a
// PEM RSA private key; "" means DIR/pcr.key, PCRKeyNone means none).
func LoadKeys(dir, pcrKey string) (*Keys, error) {
	key, err := readKey(filepath.Join(dir, "db.key"))
	if err != nil {
		return nil, fmt.Errorf("keys: %w (a directory made by `initos keys create`)", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "db.crt"))
	if err != nil {
		return nil, fmt.Errorf("keys: %w (a directory made by `initos keys create`)", err)
	}
	certs, err := authenticode.ParseCertificates(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("keys: %s: no certificate: %v", filepath.Join(dir, "db.crt"), err)
	}
	k := &Keys{DBKey: key, DBCert: certs[0]}
	switch pcrKey {
	case PCRKeyNone:
		return k, nil
	case "":
		pcrKey = filepath.Join(dir, "pcr.key")
		if _, err := os.Stat(pcrKey); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("keys: no PCR policy key %s: make one (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s), give one with --pcr-key PEM, or build without a signed PCR policy with --pcr-key none", pcrKey, pcrKey)
		}
	}
	if k.PCRKey, err = readKey(pcrKey); err != nil {
		return nil, fmt.Errorf("keys: PCR policy key: %w", err)
	}
	if _, ok := k.PCRKey.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("keys: PCR policy key %s: %T, want an RSA key", pcrKey, k.PCRKey.Public())
	}
	return k, nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := authenticode.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
