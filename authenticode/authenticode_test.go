package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"initos/pecoff"
)

const stubPath = "../pecoff/testdata/linuxx64.efi.stub"

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadPair(t testing.TB, name string) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, err := ParsePrivateKey(readFile(t, filepath.Join("testdata", name+".key")))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(readFile(t, filepath.Join("testdata", name+".crt")))
	if err != nil {
		t.Fatal(err)
	}
	return key, certs[0]
}

// testUKI builds a small UKI from the testdata stub.
func testUKI(t testing.TB) *pecoff.Image {
	t.Helper()
	img, err := pecoff.BuildUKI(readFile(t, stubPath), pecoff.UKI{
		OSRelease: []byte("ID=initos\n"),
		Cmdline:   []byte("console=ttyS0 quiet"),
		Initrd:    bytes.Repeat([]byte("initrd"), 1000),
		Linux:     bytes.Repeat([]byte{0x90}, 5000),
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestSignVerify(t *testing.T) {
	key, cert := loadPair(t, "db")
	_, other := loadPair(t, "other")
	img := testUKI(t)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	reparsed, err := pecoff.Parse(img.Bytes())
	if err != nil {
		t.Fatalf("Parse(signed) = %v", err)
	}
	tests := []struct {
		name    string
		trusted []*x509.Certificate
		want    error
	}{
		{"signer", []*x509.Certificate{cert}, nil},
		{"db list", []*x509.Certificate{other, cert}, nil},
		{"wrong cert", []*x509.Certificate{other}, ErrUntrusted},
		{"empty db", nil, ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(reparsed, tt.trusted)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyTampered(t *testing.T) {
	key, cert := loadPair(t, "db")
	img := testUKI(t)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(img.Bytes())
	cmdline := bytes.Index(data, []byte("console=ttyS0"))
	data[cmdline] = 'C'
	tampered, err := pecoff.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(tampered, []*x509.Certificate{cert}); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Verify(tampered .cmdline) = %v, want %v", err, ErrDigestMismatch)
	}
}

func TestMultipleSignaturesAndStrip(t *testing.T) {
	key, cert := loadPair(t, "db")
	key2, cert2 := loadPair(t, "rsa3072")
	img := testUKI(t)
	unsigned := bytes.Clone(img.Bytes())
	for _, kc := range []struct {
		k crypto.Signer
		c *x509.Certificate
	}{{key, cert}, {key2, cert2}} {
		if err := Sign(img, kc.k, kc.c, SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sigs, err := Signatures(img)
	if err != nil || len(sigs) != 2 {
		t.Fatalf("Signatures() = %d, %v, want 2 signatures", len(sigs), err)
	}
	for _, c := range []*x509.Certificate{cert, cert2} {
		if s, err := Verify(img, []*x509.Certificate{c}); err != nil || !s.Signer.Equal(c) {
			t.Errorf("Verify(%q) = %v, want signer %q", c.Subject, err, c.Subject)
		}
	}
	if err := img.StripCertificates(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img.Bytes(), unsigned) {
		t.Errorf("StripCertificates() did not restore the unsigned image")
	}
	if _, err := Verify(img, []*x509.Certificate{cert}); !errors.Is(err, ErrNotSigned) {
		t.Errorf("Verify(stripped) = %v, want %v", err, ErrNotSigned)
	}
}

func TestSignReproducible(t *testing.T) {
	key, cert := loadPair(t, "db")
	epoch := time.Unix(1700000000, 0)
	var out [2][]byte
	for i := range out {
		img := testUKI(t)
		if err := Sign(img, key, cert, SignOptions{SigningTime: epoch}); err != nil {
			t.Fatal(err)
		}
		out[i] = img.Bytes()
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Error("two signatures of the same image differ")
	}
	img, _ := pecoff.Parse(out[0])
	sigs, _ := Signatures(img)
	if len(sigs) != 1 || !sigs[0].SigningTime.Equal(epoch) {
		t.Errorf("SigningTime = %v, want %v", sigs[0].SigningTime, epoch)
	}
}

func TestSignRejectsBadKeys(t *testing.T) {
	key, _ := loadPair(t, "db")
	_, other := loadPair(t, "other")
	img := testUKI(t)
	if err := Sign(img, key, other, SignOptions{}); !errors.Is(err, ErrKey) {
		t.Errorf("Sign(key, mismatched cert) = %v, want %v", err, ErrKey)
	}
	if _, size := img.CertTable(); size != 0 {
		t.Errorf("failed Sign left a certificate table of %d bytes", size)
	}
}

func TestDetached(t *testing.T) {
	key, cert := loadPair(t, "db")
	_, other := loadPair(t, "other")
	data := []byte("variable payload")
	sd, err := SignDetached(data, key, cert)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDetached(sd, data, []*x509.Certificate{cert}); err != nil {
		t.Errorf("VerifyDetached() = %v", err)
	}
	if _, err := VerifyDetached(sd, []byte("other payload"), []*x509.Certificate{cert}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyDetached(changed data) = %v, want %v", err, ErrBadSignature)
	}
	if _, err := VerifyDetached(sd, data, []*x509.Certificate{other}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("VerifyDetached(other cert) = %v, want %v", err, ErrUntrusted)
	}
}

func TestSignKeySizes(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{"db", nil}, {"rsa3072", nil}, {"rsa4096", nil}, {"rsa1024", ErrKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, cert := loadPair(t, tt.name)
			img := testUKI(t)
			err := Sign(img, key, cert, SignOptions{})
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Sign(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if err == nil {
				if _, err := Verify(img, []*x509.Certificate{cert}); err != nil {
					t.Errorf("Verify(%s) = %v", tt.name, err)
				}
			}
		})
	}
}

func TestParsePrivateKeyFormats(t *testing.T) {
	for _, name := range []string{"testdata/db.key", "testdata/db-pkcs1.key"} {
		if _, err := ParsePrivateKey(readFile(t, name)); err != nil {
			t.Errorf("ParsePrivateKey(%s) = %v", name, err)
		}
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Error("ParsePrivateKey(junk) = nil error")
	}
}
