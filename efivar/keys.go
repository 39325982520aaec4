package efivar

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// KeyPair is a Secure Boot signing key and its self-signed certificate.
type KeyPair struct {
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// OwnerKeys are a machine owner's Secure Boot keys: PK (platform key), KEK
// (key exchange key) and db (the key that signs UKIs).
type OwnerKeys struct {
	Owner       GUID
	PK, KEK, DB KeyPair
}

// GenerateOwnerKeys creates RSA-2048 keys and self-signed certificates
// "<cn> PK", "<cn> KEK" and "<cn> db", valid from notBefore for 20 years
// (firmware does not check validity; tools may).
func GenerateOwnerKeys(owner GUID, cn string, notBefore time.Time) (*OwnerKeys, error) {
	k := &OwnerKeys{Owner: owner}
	for _, p := range []struct {
		kp   *KeyPair
		role string
	}{{&k.PK, "PK"}, {&k.KEK, "KEK"}, {&k.DB, "db"}} {
		var err error
		if *p.kp, err = newKeyPair(cn+" "+p.role, notBefore); err != nil {
			return nil, fmt.Errorf("generate %s key: %w", p.role, err)
		}
	}
	return k, nil
}

func newKeyPair(cn string, notBefore time.Time) (KeyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return KeyPair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return KeyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notBefore.UTC().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return KeyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return KeyPair{Key: key, Cert: cert}, err
}

// Payloads are the files firmware menus and Linux enrollment take.
type Payloads struct {
	PKList, KEKList, DBList []byte // EFI_SIGNATURE_LISTs (.esl)
	PK, KEK, DB             []byte // signed updates (.auth): PK by PK, KEK by PK, db by KEK
	NoPK                    []byte // signed deletion of PK by PK: back to setup mode
}

// Payloads builds the signature lists and signed updates, timestamped t.
// extraDB lists (e.g. vendor certificates) are appended to db.
func (k *OwnerKeys) Payloads(t time.Time, extraDB ...SignatureList) (*Payloads, error) {
	var p Payloads
	var err error
	if p.PKList, err = AppendSignatureLists(nil, X509List(k.Owner, k.PK.Cert)); err != nil {
		return nil, err
	}
	if p.KEKList, err = AppendSignatureLists(nil, X509List(k.Owner, k.KEK.Cert)); err != nil {
		return nil, err
	}
	if p.DBList, err = AppendSignatureLists(nil, append([]SignatureList{X509List(k.Owner, k.DB.Cert)}, extraDB...)...); err != nil {
		return nil, err
	}
	steps := []struct {
		out  *[]byte
		name string
		guid GUID
		data []byte
		by   KeyPair
	}{
		{&p.PK, "PK", GlobalVariable, p.PKList, k.PK},
		{&p.KEK, "KEK", GlobalVariable, p.KEKList, k.PK},
		{&p.DB, "db", ImageSecurityDB, p.DBList, k.KEK},
		{&p.NoPK, "PK", GlobalVariable, nil, k.PK},
	}
	for _, s := range steps {
		if *s.out, err = SignUpdate(s.name, s.guid, AuthAttributes, t, s.data, s.by.Key, s.by.Cert); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// ErrNotSetupMode is returned by Enroll when the firmware is in user mode.
var ErrNotSetupMode = errors.New("firmware is not in setup mode (SetupMode=0): clear the keys in the firmware menu first")

// Enroll writes signed db, KEK and last PK updates (.auth payloads) through
// s. Writing PK ends setup mode, so it comes last; Secure Boot is enforced
// from the next boot.
func Enroll(s Store, db, kek, pk []byte) error {
	setup, err := GetUint8(s, "SetupMode", GlobalVariable)
	if err != nil {
		return fmt.Errorf("enroll keys: %w", err)
	}
	if setup != 1 {
		return fmt.Errorf("enroll keys: %w", ErrNotSetupMode)
	}
	for _, v := range []struct {
		name string
		guid GUID
		data []byte
	}{{"db", ImageSecurityDB, db}, {"KEK", GlobalVariable, kek}, {"PK", GlobalVariable, pk}} {
		if _, err := ParseSignedPayload(v.data); err != nil {
			return fmt.Errorf("enroll keys: %s: %w", v.name, err)
		}
		if err := s.Set(v.name, v.guid, AuthAttributes, v.data); err != nil {
			return fmt.Errorf("enroll keys: %w", err)
		}
	}
	return nil
}

// Status is the Secure Boot state read from variables.
type Status struct {
	SetupMode, SecureBoot uint8
	PK, KEK, DB           []*x509.Certificate
}

// ReadStatus reads SetupMode, SecureBoot and the certificates in PK, KEK
// and db. A variable that holds a whole .auth payload (a Dir store written
// by Enroll: no firmware strips the authentication header there) is read
// through that header.
func ReadStatus(s Store) (*Status, error) {
	var st Status
	var err error
	if st.SetupMode, err = GetUint8(s, "SetupMode", GlobalVariable); err != nil {
		return nil, err
	}
	if st.SecureBoot, err = GetUint8(s, "SecureBoot", GlobalVariable); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		dst  *[]*x509.Certificate
		name string
		guid GUID
	}{{&st.PK, "PK", GlobalVariable}, {&st.KEK, "KEK", GlobalVariable}, {&st.DB, "db", ImageSecurityDB}} {
		_, data, err := s.Get(v.name, v.guid)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lists, err := storedLists(data)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", v.name, err)
		}
		if *v.dst, err = Certificates(lists); err != nil {
			return nil, fmt.Errorf("read %s: %w", v.name, err)
		}
	}
	return &st, nil
}

// storedLists parses a key variable's data as signature lists; data that is
// not, but is an authenticated payload (an .auth as written to a plain
// directory store), yields the lists after its header.
func storedLists(data []byte) ([]SignatureList, error) {
	lists, err := ParseSignatureLists(data)
	if err == nil {
		return lists, nil
	}
	p, perr := ParseSignedPayload(data)
	if perr != nil {
		return nil, err
	}
	return ParseSignatureLists(p.Data)
}
