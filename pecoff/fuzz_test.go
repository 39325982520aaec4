package pecoff

import (
	"bytes"
	"encoding/binary"
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
	// Issue 10: an empty section pointing far past the file.
	if img, err := Parse(stub); err == nil {
		bad := bytes.Clone(stub)
		h := img.sectionTableOff() + sectionHeaderSize
		binary.LittleEndian.PutUint32(bad[h+16:], 0)
		binary.LittleEndian.PutUint32(bad[h+20:], 0xffffff00)
		f.Add(bad)
	}
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
