package authenticode

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"initos/internal/testenv"
	"initos/pecoff"
)

// Microsoft Corporation UEFI CA 2011, the db certificate that signs shim
// (and every third-party UEFI binary). The fixture is the public
// certificate; its SHA-256 is pinned here and checked against the copy
// Debian's ovmf package enrolls in OVMF_VARS*.ms.fd.
const (
	msUEFICAPath   = "testdata/MicCorUEFCA2011_2011-06-27.crt"
	msUEFICASHA256 = "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507"
	shimSigned     = "/usr/lib/shim/shimx64.efi.signed"
)

func msUEFICA(t *testing.T) *x509.Certificate {
	t.Helper()
	der := readFile(t, msUEFICAPath)
	if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != msUEFICASHA256 {
		t.Fatalf("%s: SHA-256 %x, want %s", msUEFICAPath, sum, msUEFICASHA256)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMSUEFICAMatchesOVMF: the pinned fixture is the certificate Debian's
// ovmf enrolls in the db of its Microsoft-keyed variable store.
func TestMSUEFICAMatchesOVMF(t *testing.T) {
	const vars = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	store, err := os.ReadFile(vars)
	if err != nil {
		testenv.Missing(t, "%s (package ovmf): %v", vars, err)
	}
	want := readFile(t, msUEFICAPath)
	if !bytes.Contains(store, want) {
		t.Errorf("%s does not hold %s", vars, msUEFICAPath)
	}
}

// TestShimSigned: Debian's shim, signed by Microsoft (signtool pads the
// PKCS #7 blob inside dwLength), verifies against the Microsoft UEFI CA,
// like sbverify says, and not against another certificate.
func TestShimSigned(t *testing.T) {
	b, err := os.ReadFile(shimSigned)
	if err != nil {
		testenv.Missing(t, "%s (package shim-signed): %v", shimSigned, err)
	}
	testenv.Run(t, "sbverify", "--cert", pemFile(t, msUEFICA(t)), shimSigned)
	img, err := pecoff.Parse(b)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", shimSigned, err)
	}
	s, err := Verify(img, []*x509.Certificate{msUEFICA(t)})
	if err != nil {
		t.Fatalf("Verify(%s, Microsoft UEFI CA 2011) = %v, want nil", shimSigned, err)
	}
	if !strings.Contains(s.Signer.Subject.CommonName, "Microsoft") {
		t.Errorf("Verify(%s) signer = %q, want a Microsoft certificate", shimSigned, s.Signer.Subject)
	}
	_, other := loadPair(t, "db")
	if _, err := Verify(img, []*x509.Certificate{other}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Verify(%s, our db) = %v, want %v", shimSigned, err, ErrUntrusted)
	}
}

func pemFile(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	return writeTemp(t, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// certWithCN makes a self-signed certificate for the db key with a
// subject of the given common name: its length moves the end of the
// PKCS #7 blob, so the padding osslsigncode counts in dwLength varies.
func certWithCN(t *testing.T, cn string) string {
	t.Helper()
	key, _ := loadPair(t, "db")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(cn))), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(2000000000, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "cn.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// osslsign signs in with osslsigncode and returns the signed image.
func osslsign(t *testing.T, in []byte, cert, key string, extra ...string) *pecoff.Image {
	t.Helper()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.efi"), filepath.Join(dir, "out.efi")
	if err := os.WriteFile(src, in, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"sign", "-certs", cert, "-key", key}, extra...)
	testenv.Run(t, "osslsigncode", append(args, "-in", src, "-out", dst)...)
	img, err := pecoff.Parse(readFile(t, dst))
	if err != nil {
		t.Fatalf("Parse(osslsigncode %q output) = %v", extra, err)
	}
	return img
}

// padding returns how many bytes of the first entry follow its DER blob.
func padding(t *testing.T, img *pecoff.Image) int {
	t.Helper()
	certs, err := img.Certificates()
	if err != nil || len(certs) == 0 {
		t.Fatalf("Certificates() = %v, %v", certs, err)
	}
	der, err := trimPadding(certs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	return len(certs[0].Data) - len(der)
}

// TestOsslsigncodeDigests: osslsigncode signatures with every digest it
// offers and subjects of every length modulo 8 (so every amount of
// padding inside dwLength): SHA-1/256/384/512 verify, MD5 is refused by
// name (UEFI firmware does not accept it).
func TestOsslsigncodeDigests(t *testing.T) {
	testenv.Tool(t, "osslsigncode")
	_, cert := loadPair(t, "db")
	unsigned := testUKI(t).Bytes()
	paddings := map[int]bool{}
	for _, h := range []struct {
		name string
		hash crypto.Hash
	}{{"sha1", crypto.SHA1}, {"sha256", crypto.SHA256}, {"sha384", crypto.SHA384}, {"sha512", crypto.SHA512}} {
		for n := 1; n <= 8; n++ {
			cn := strings.Repeat("x", n)
			t.Run(fmt.Sprintf("%s/cn%d", h.name, n), func(t *testing.T) {
				img := osslsign(t, unsigned, certWithCN(t, cn), "testdata/db.key", "-h", h.name)
				paddings[padding(t, img)] = true
				signer, _ := ParseCertificates(readFile(t, certWithCN(t, cn)))
				s, err := Verify(img, signer)
				if err != nil {
					t.Fatalf("Verify(osslsigncode -h %s, CN %q) = %v", h.name, cn, err)
				}
				if s.DigestAlgorithm != h.hash {
					t.Errorf("DigestAlgorithm = %v, want %v", s.DigestAlgorithm, h.hash)
				}
				if _, err := Verify(img, []*x509.Certificate{cert}); !errors.Is(err, ErrUntrusted) {
					t.Errorf("Verify(other cert) = %v, want %v", err, ErrUntrusted)
				}
			})
		}
	}
	if len(paddings) < 4 {
		t.Errorf("osslsigncode signatures covered paddings %v only; the test wants several", paddings)
	}
	img := osslsign(t, unsigned, "testdata/db.crt", "testdata/db.key", "-h", "md5")
	_, err := Verify(img, []*x509.Certificate{cert})
	if want := "unsupported digest algorithm MD5"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Verify(osslsigncode -h md5) = %v, want an error containing %q", err, want)
	}
}

// TestOsslsigncodeNested: a signature nested by osslsigncode -nest (an
// unauthenticated attribute of the first) is decoded and verifies on its
// own; firmware ignores it, so Verify trusts the outer signer only.
func TestOsslsigncodeNested(t *testing.T) {
	testenv.Tool(t, "osslsigncode")
	_, db := loadPair(t, "db")
	_, other := loadPair(t, "other")
	first := osslsign(t, testUKI(t).Bytes(), "testdata/db.crt", "testdata/db.key", "-h", "sha256")
	img := osslsign(t, first.Bytes(), "testdata/other.crt", "testdata/other.key", "-nest", "-h", "sha384")
	entries, err := Entries(img)
	if err != nil || len(entries) != 1 || entries[0].Err != nil {
		t.Fatalf("Entries(nested) = %+v, %v, want one decoded entry", entries, err)
	}
	s := entries[0].Signature
	if len(s.Nested) != 1 || len(s.NestedErrors) != 0 {
		t.Fatalf("Nested = %d signatures, errors %v, want 1 and none", len(s.Nested), s.NestedErrors)
	}
	n := s.Nested[0]
	if n.DigestAlgorithm != crypto.SHA384 || n.Signer.Subject.CommonName != other.Subject.CommonName {
		t.Errorf("nested signature: %v by %q, want SHA-384 by %q", n.DigestAlgorithm, n.Signer.Subject, other.Subject)
	}
	if err := n.Verify(img, []*x509.Certificate{other}); err != nil {
		t.Errorf("nested Verify(other) = %v, want nil", err)
	}
	if _, err := Verify(img, []*x509.Certificate{db}); err != nil {
		t.Errorf("Verify(db) = %v, want nil", err)
	}
	if _, err := Verify(img, []*x509.Certificate{other}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Verify(trusting only the nested signer) = %v, want %v (firmware ignores nested signatures)", err, ErrUntrusted)
	}
}

// TestContentInfoTag: a ContentInfo whose SEQUENCE tag 0x30 is replaced by
// 0x8c is refused, as sbverify and osslsigncode refuse it.
func TestContentInfoTag(t *testing.T) {
	key, cert := loadPair(t, "db")
	img := testUKI(t)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(img.Bytes())
	off, _ := img.CertTable()
	if b[off+8] != 0x30 {
		t.Fatalf("signature starts with %#x, want 0x30", b[off+8])
	}
	b[off+8] = 0x8c
	bad, err := pecoff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(bad, []*x509.Certificate{cert})
	if want := "outer element: tag 0x8c, want SEQUENCE (0x30)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Verify(tag 0x8c) = %v, want an error containing %q", err, want)
	}
	path := writeTemp(t, "bad.efi", b)
	if out, err := exec(t, "sbverify", "--cert", "testdata/db.crt", path); err == nil {
		t.Errorf("sbverify accepted tag 0x8c:\n%s", out)
	}
	if out, err := exec(t, "osslsigncode", "verify", "-CAfile", "testdata/db.crt", "-in", path); err == nil {
		t.Errorf("osslsigncode accepted tag 0x8c:\n%s", out)
	}
}

func TestTrimPadding(t *testing.T) {
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	for _, tt := range []struct {
		in   []byte
		want string // error substring; "" for success
	}{
		{der, ""},
		{append(bytes.Clone(der), 0, 0, 0), ""},
		{append(bytes.Clone(der), 0, 1, 0), "3 bytes follow the signature and are not zero padding (byte 1 is 0x01)"},
		{der[:4], "outer element"},
	} {
		got, err := trimPadding(tt.in)
		switch {
		case tt.want == "" && (err != nil || !bytes.Equal(got, der)):
			t.Errorf("trimPadding(%x) = %x, %v, want %x", tt.in, got, err, der)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("trimPadding(%x) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}
