package efivar

import (
	"bytes"
	"crypto/x509"
	"testing"
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

func FuzzSignatureLists(f *testing.F) {
	k := testKeys(f)
	p, err := k.Payloads(testTime)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.DBList)
	f.Add(p.DB)
	f.Fuzz(func(t *testing.T, data []byte) {
		if lists, err := ParseSignatureLists(data); err == nil {
			_, _ = Certificates(lists)
			if _, err := AppendSignatureLists(nil, lists...); err != nil {
				t.Fatalf("AppendSignatureLists(parsed) = %v", err)
			}
		}
		if sp, err := ParseSignedPayload(data); err == nil {
			_ = sp.Time.GoTime()
			_, _ = VerifyUpdate("db", ImageSecurityDB, AuthAttributes, data, []*x509.Certificate{k.KEK.Cert})
		}
	})
}
