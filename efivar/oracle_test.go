package efivar

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"initos/internal/testenv"
)

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOracleSbvarsign: we verify sbvarsign's signed db update, and ours
// has the same layout (EFI_TIME, header, data) for the same timestamp;
// only the PKCS #7 differs (sbvarsign adds authenticated attributes).
func TestOracleSbvarsign(t *testing.T) {
	testenv.Tool(t, "sbvarsign")
	k := testKeys(t)
	p, err := k.Payloads(testTime)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath, certPath, esl, out := filepath.Join(dir, "KEK.key"), filepath.Join(dir, "KEK.crt"), filepath.Join(dir, "db.esl"), filepath.Join(dir, "db.auth")
	writePEM(t, keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k.KEK.Key))
	writePEM(t, certPath, "CERTIFICATE", k.KEK.Cert.Raw)
	if err := os.WriteFile(esl, p.DBList, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "sbvarsign", "--key", keyPath, "--cert", certPath,
		"--attr", "NON_VOLATILE,BOOTSERVICE_ACCESS,RUNTIME_ACCESS,TIME_BASED_AUTHENTICATED_WRITE_ACCESS",
		"--output", out, "db", esl)
	theirs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyUpdate("db", ImageSecurityDB, AuthAttributes, theirs, []*x509.Certificate{k.KEK.Cert}); err != nil {
		t.Fatalf("VerifyUpdate(sbvarsign db.auth) = %v", err)
	}
	sp, err := ParseSignedPayload(theirs)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := SignUpdate("db", ImageSecurityDB, AuthAttributes, sp.Time.GoTime(), p.DBList, k.KEK.Key, k.KEK.Cert)
	if err != nil {
		t.Fatal(err)
	}
	op, _ := ParseSignedPayload(ours)
	if !bytes.Equal(ours[:16], theirs[:16]) || !bytes.Equal(op.Data, sp.Data) {
		t.Errorf("EFI_TIME or data differ from sbvarsign:\nours   %x\ntheirs %x", ours[:40], theirs[:40])
	}
	if !bytes.Equal(ours, theirs) {
		t.Logf("PKCS #7 differs from sbvarsign's (ours %d bytes, theirs %d): layouts still compared above", len(op.SignedData), len(sp.SignedData))
	}
}

// TestOracleOpensslCMS: openssl cms -verify accepts the PKCS #7 of our
// signed KEK update over the UEFI-defined signed blob, with PK as anchor.
func TestOracleOpensslCMS(t *testing.T) {
	testenv.Tool(t, "openssl")
	k := testKeys(t)
	p, err := k.Payloads(testTime)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ParseSignedPayload(p.KEK)
	if err != nil {
		t.Fatal(err)
	}
	// Wrap the bare SignedData in a ContentInfo for openssl.
	ci, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sp.SignedData}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sig, blob, ca := filepath.Join(dir, "sig.der"), filepath.Join(dir, "blob"), filepath.Join(dir, "PK.crt")
	for path, data := range map[string][]byte{sig: ci, blob: signedBlob("KEK", GlobalVariable, AuthAttributes, sp.Time, sp.Data)} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePEM(t, ca, "CERTIFICATE", k.PK.Cert.Raw)
	testenv.Run(t, "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", blob,
		"-CAfile", ca, "-purpose", "any", "-out", os.DevNull)
}
