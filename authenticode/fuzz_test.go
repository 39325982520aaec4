package authenticode

import (
	"crypto"
	"crypto/x509"
	"testing"

	"initos/pecoff"
)

// FuzzParseSignature feeds arbitrary bytes, as a WIN_CERTIFICATE's
// bCertificate, to the PKCS #7 decoder (padding, nested signatures) and
// the checks behind Verify and VerifyDetached: nothing may panic. The
// committed corpus (testdata/fuzz) holds osslsigncode signatures: nested,
// padded, SHA-1/384/512 and MD5.
func FuzzParseSignature(f *testing.F) {
	key, cert := loadPair(f, "db")
	img := testUKI(f)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		f.Fatal(err)
	}
	certs, _ := img.Certificates()
	f.Add(certs[0].Data)
	f.Add(append(append([]byte{}, certs[0].Data...), 0, 0, 0, 0, 0))
	if sd, err := SignDetached([]byte("data"), key, cert); err == nil {
		f.Add(sd)
	}
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	unsigned := testUKI(f)
	f.Fuzz(func(t *testing.T, der []byte) {
		if s, err := ParseSignature(der); err == nil {
			_ = s.Verify(unsigned, []*x509.Certificate{cert})
			for _, n := range s.Nested {
				_ = n.Verify(unsigned, []*x509.Certificate{cert})
			}
		}
		_, _ = VerifyDetached(der, []byte("data"), []*x509.Certificate{cert})
	})
}

// FuzzImage feeds arbitrary bytes as a PE image to everything `uki
// inspect` and `uki verify` run: Parse, the Authenticode hash with every
// digest, Entries and Verify. Nothing may panic.
func FuzzImage(f *testing.F) {
	key, cert := loadPair(f, "db")
	img := testUKI(f)
	f.Add(append([]byte{}, img.Bytes()...))
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		f.Fatal(err)
	}
	f.Add(append([]byte{}, img.Bytes()...))
	f.Add(readFile(f, stubPath))
	trusted := []*x509.Certificate{cert}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := pecoff.Parse(data)
		if err != nil {
			return
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			_, _ = Hash(img, h)
		}
		entries, _ := Entries(img)
		for _, e := range entries {
			if e.Signature != nil {
				_ = e.Signature.CheckImage(img)
			}
		}
		_, _ = Verify(img, trusted)
	})
}
