package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/pecoff"
)

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOracleSbverifyAcceptsOurs: sbverify --cert accepts our signature and
// rejects it for another certificate.
func TestOracleSbverifyAcceptsOurs(t *testing.T) {
	testenv.Tool(t, "sbverify")
	key, cert := loadPair(t, "db")
	img := testUKI(t)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	signed := writeTemp(t, "uki.efi", img.Bytes())
	testenv.Run(t, "sbverify", "--cert", "testdata/db.crt", signed)
	if out, err := exec(t, "sbverify", "--cert", "testdata/other.crt", signed); err == nil {
		t.Errorf("sbverify --cert other.crt accepted our signature:\n%s", out)
	}
}

// TestOracleWeAcceptSbsign: our verifier accepts sbsign's signature, and
// the image digest sbsign signed is the one we compute.
func TestOracleWeAcceptSbsign(t *testing.T) {
	testenv.Tool(t, "sbsign")
	_, cert := loadPair(t, "db")
	img := testUKI(t)
	if err := img.PrepareForSigning(); err != nil {
		t.Fatal(err)
	}
	ours, err := Hash(img, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	in := writeTemp(t, "uki.efi", img.Bytes())
	out := in + ".signed"
	testenv.Run(t, "sbsign", "--key", "testdata/db.key", "--cert", "testdata/db.crt", "--output", out, in)
	signed, err := pecoff.Parse(readFile(t, out))
	if err != nil {
		t.Fatalf("Parse(sbsign output) = %v", err)
	}
	s, err := Verify(signed, []*x509.Certificate{cert})
	if err != nil {
		t.Fatalf("Verify(sbsign output) = %v", err)
	}
	if !bytes.Equal(s.Digest, ours) {
		t.Errorf("sbsign signed digest %x, we compute %x", s.Digest, ours)
	}
}

// TestOracleOsslsigncodeDigest: osslsigncode's calculated digest of our
// signed UKI equals ours, and it finds the signature intact.
func TestOracleOsslsigncodeDigest(t *testing.T) {
	testenv.Tool(t, "osslsigncode")
	key, cert := loadPair(t, "db")
	img := testUKI(t)
	if err := Sign(img, key, cert, SignOptions{}); err != nil {
		t.Fatal(err)
	}
	ours, _ := Hash(img, crypto.SHA256)
	out, _ := exec(t, "osslsigncode", "verify", "-CAfile", "testdata/db.crt", "-in", writeTemp(t, "uki.efi", img.Bytes()))
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no calculated digest in osslsigncode output:\n%s", out)
	}
	if got := strings.ToLower(m[1]); got != hexString(ours) {
		t.Errorf("osslsigncode digest %s, ours %x", got, ours)
	}
	if !strings.Contains(out, "Signature verification: ok") {
		t.Errorf("osslsigncode did not verify our signature:\n%s", out)
	}
}

// TestDebianKernelSignature: the Debian kernel's own signature parses and
// matches our digest of the kernel image.
func TestDebianKernelSignature(t *testing.T) {
	k, err := vmtest.FindKernel()
	if err != nil {
		testenv.Missing(t, "Debian kernel (linux-image-amd64): %v", err)
	}
	debianKernel := k.Image
	data, err := os.ReadFile(debianKernel)
	if err != nil {
		t.Fatal(err)
	}
	img, err := pecoff.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", debianKernel, err)
	}
	sigs, err := Signatures(img)
	if err != nil || len(sigs) == 0 {
		t.Fatalf("Signatures(%s) = %v, %v", debianKernel, sigs, err)
	}
	// Trust the signer itself: this checks digest and signature only.
	if _, err := Verify(img, []*x509.Certificate{sigs[0].Signer}); err != nil {
		t.Errorf("Verify(%s, its signer) = %v", debianKernel, err)
	}
}
