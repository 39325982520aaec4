package pecoff

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and, for images it accepts,
// exercises every reader and the editors: nothing may panic, and an edited
// image must parse again.
func FuzzParse(f *testing.F) {
	stub, err := os.ReadFile(stubPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(stub)
	f.Add(stub[:0x400])
	if uki, err := BuildUKI(stub, smallUKI()); err == nil {
		_ = uki.AppendCertificate(Certificate{Revision: CertRevision2, Type: CertTypePKCSSignedData, Data: []byte("signature")})
		f.Add(bytes.Clone(uki.Bytes()))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Parse(data)
		if err != nil {
			return
		}
		if !bytes.Equal(img.Bytes(), data) {
			t.Fatal("Parse changed the bytes")
		}
		for _, s := range img.Sections() {
			_ = img.Section(s.Name)
		}
		_, _ = img.Certificates()
		_ = img.ComputeCheckSum()
		if _, err := img.StripSymbolTable(); err != nil {
			return
		}
		if err := img.AddSection(".fuzz", []byte("x"), SectionMemRead); err != nil {
			return
		}
		if _, err := Parse(img.Bytes()); err != nil {
			t.Fatalf("Parse(after AddSection) = %v", err)
		}
	})
}
