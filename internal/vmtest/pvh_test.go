package vmtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"strings"
	"testing"
)

// fakeBzImage returns a minimal bzImage whose payload is payload.
func fakeBzImage(payload []byte) []byte {
	bz := make([]byte, 5*512)
	bz[offSetupSects] = 4
	copy(bz[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint32(bz[offPayloadOffset:], 16)
	binary.LittleEndian.PutUint32(bz[offPayloadLength:], uint32(len(payload)))
	bz = append(bz, make([]byte, 16)...)
	return append(bz, payload...)
}

func TestBzPayload(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("\x7fELF kernel"))
	zw.Close()
	got, err := bzPayload(fakeBzImage(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	elf, err := decompressPayload(got)
	if err != nil || string(elf) != "\x7fELF kernel" {
		t.Errorf("decompressPayload(gzip) = %q, %v, want the ELF", elf, err)
	}
	tests := []struct {
		name string
		bz   []byte
		want string
	}{
		{"short", []byte("MZ"), "not a bzImage"},
		{"no magic", make([]byte, 4096), "not a bzImage"},
		{"payload past the end", fakeBzImage(nil)[:5*512], "outside"},
	}
	bad := fakeBzImage(nil)
	binary.LittleEndian.PutUint32(bad[offPayloadLength:], 1<<20)
	tests = append(tests, struct {
		name string
		bz   []byte
		want string
	}{"length too big", bad, "outside"})
	for _, tt := range tests {
		if _, err := bzPayload(tt.bz); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("bzPayload(%s) error = %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := decompressPayload([]byte("BZh9")); err == nil {
		t.Errorf("decompressPayload(bzip2) = nil error, want unsupported")
	}
}

func TestHasNote(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, make([]byte, int(align4(uint32(len(name)+1)))-len(name))...)
		return append(b, desc...)
	}
	data := append(note("GNU", 3, make([]byte, 20)), note("Xen", 18, []byte{1, 2, 3, 4})...)
	if !hasNote(data, binary.LittleEndian, "Xen", 18) {
		t.Errorf("hasNote(GNU+Xen notes, Xen 18) = false, want true")
	}
	if hasNote(data, binary.LittleEndian, "Xen", 5) || hasNote(data[:30], binary.LittleEndian, "Xen", 18) {
		t.Errorf("hasNote(wrong type or truncated) = true, want false")
	}
	if err := hasPVHNote("testdata/hello.txt"); err == nil {
		t.Errorf("hasPVHNote(text file) = nil error, want one")
	}
}
