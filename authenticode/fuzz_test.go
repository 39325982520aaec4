package authenticode

import (
	"crypto/x509"
	"testing"

	"initos/pecoff"
)

// FuzzParseSignature feeds arbitrary DER to the PKCS #7 decoder and the
// checks behind Verify and VerifyDetached: nothing may panic.
func FuzzParseSignature(f *testing.F) {
	key, cert := loadPair(f, "db")
	img := testUKI(f)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		f.Fatal(err)
	}
	certs, _ := img.Certificates()
	f.Add(certs[0].Data)
	if sd, err := SignDetached([]byte("data"), key, cert); err == nil {
		f.Add(sd)
	}
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	unsigned := testUKI(f)
	f.Fuzz(func(t *testing.T, der []byte) {
		if s, err := ParseSignature(der); err == nil {
			_ = s.Verify(unsigned, []*x509.Certificate{cert})
		}
		_, _ = VerifyDetached(der, []byte("data"), []*x509.Certificate{cert})
		_ = pecoff.CertTypePKCSSignedData
	})
}
