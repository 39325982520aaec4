package efivar

import (
	"bytes"
	"crypto/x509"
	"os"
	"testing"

	"initos/authenticode"
)

func FuzzLoadOption(f *testing.F) {
	o := LoadOption{Attributes: LoadOptionActive, Description: "InitOS", FilePath: DevicePath{
		HardDriveNode(HardDrive{PartitionNumber: 1, PartitionStart: 2048, PartitionSize: 4096, PartitionFormat: PartitionFormatGPT, SignatureType: SignatureTypeGUID}),
		FilePathNode(`\EFI\BOOT\BOOTX64.EFI`)}, OptionalData: []byte("x")}
	b, _ := o.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1, 0, 0, 0, 4, 0, 0, 0, 0x7f, 0xff, 4, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var o LoadOption
		if err := o.UnmarshalBinary(data); err != nil {
			return
		}
		_ = o.FilePath.String()
		again, err := o.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(decoded) = %v", err)
		}
		var o2 LoadOption
		if err := o2.UnmarshalBinary(again); err != nil {
			t.Fatalf("UnmarshalBinary(re-encoded) = %v", err)
		}
		if o2.Description != o.Description || len(o2.FilePath) != len(o.FilePath) || !bytes.Equal(o2.OptionalData, o.OptionalData) {
			t.Fatalf("round trip changed the option: %+v -> %+v", o, o2)
		}
	})
}

// FuzzSignatureLists feeds arbitrary bytes to the signature list and the
// authenticated payload decoders. Seeds are signed with the fixed test key
// of ../authenticode/testdata (generating keys in every fuzz worker would
// dominate the run).
func FuzzSignatureLists(f *testing.F) {
	keyPEM, err := os.ReadFile("../authenticode/testdata/db.key")
	if err != nil {
		f.Fatal(err)
	}
	certPEM, err := os.ReadFile("../authenticode/testdata/db.crt")
	if err != nil {
		f.Fatal(err)
	}
	key, err := authenticode.ParsePrivateKey(keyPEM)
	if err != nil {
		f.Fatal(err)
	}
	certs, err := authenticode.ParseCertificates(certPEM)
	if err != nil {
		f.Fatal(err)
	}
	esl, err := AppendSignatureLists(nil, X509List(testOwner, certs[0]),
		SignatureList{Type: CertSHA256, Signatures: []Signature{{testOwner, make([]byte, 32)}}})
	if err != nil {
		f.Fatal(err)
	}
	auth, err := SignUpdate("db", ImageSecurityDB, AuthAttributes, testTime, esl, key, certs[0])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(esl)
	f.Add(auth)
	trusted := []*x509.Certificate{certs[0]}
	f.Fuzz(func(t *testing.T, data []byte) {
		if lists, err := ParseSignatureLists(data); err == nil {
			_, _ = Certificates(lists)
			if _, err := AppendSignatureLists(nil, lists...); err != nil {
				t.Fatalf("AppendSignatureLists(parsed) = %v", err)
			}
		}
		if sp, err := ParseSignedPayload(data); err == nil {
			_ = sp.Time.GoTime()
			_, _ = VerifyUpdate("db", ImageSecurityDB, AuthAttributes, data, trusted)
		}
	})
}
