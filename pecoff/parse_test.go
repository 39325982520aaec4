package pecoff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// mutate returns a copy of the stub with edit applied.
func mutate(t *testing.T, edit func(img *Image, b []byte) []byte) []byte {
	t.Helper()
	img, err := Parse(readStub(t))
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(img.Bytes())
	return edit(img, b)
}

func sectionHeaderAt(img *Image, i int) int { return img.sectionTableOff() + i*sectionHeaderSize }

func TestParseErrors(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		name string
		edit func(img *Image, b []byte) []byte
		want string
	}{
		{"empty", func(*Image, []byte) []byte { return nil }, "shorter than a DOS header"},
		{"garbage", func(_ *Image, b []byte) []byte { return bytes.Repeat([]byte{0x5a, 0x4d, 0x00}, 200) }, "no MZ signature"},
		{"e_lfanew outside", func(_ *Image, b []byte) []byte { le.PutUint32(b[lfanewOffset:], 0xfffffff0); return b }, "e_lfanew"},
		{"no PE signature", func(img *Image, b []byte) []byte { b[img.peOff] = 'X'; return b }, "no PE signature"},
		{"truncated in section table", func(img *Image, b []byte) []byte { return b[:img.sectionTableOff()+10] }, ""},
		{"truncated in sections", func(img *Image, _ []byte) []byte {
			if _, err := img.StripSymbolTable(); err != nil {
				t.Fatal(err)
			}
			return bytes.Clone(img.Bytes()[:0x10000])
		}, "outside the file"},
		{"truncated in symbol table", func(_ *Image, b []byte) []byte { return b[:0x11500] }, "string table"},
		{"PE32 magic", func(img *Image, b []byte) []byte { le.PutUint16(b[img.optOff:], 0x10b); return b }, ""},
		{"zero FileAlignment", func(img *Image, b []byte) []byte { le.PutUint32(b[img.optOff+optFileAlign:], 0); return b }, "FileAlignment"},
		{"overlapping raw data", func(img *Image, b []byte) []byte {
			le.PutUint32(b[sectionHeaderAt(img, 1)+20:], img.sections[0].PointerToRawData+0x200)
			return b
		}, "overlaps section \".text\""},
		{"overlapping RVAs", func(img *Image, b []byte) []byte {
			le.PutUint32(b[sectionHeaderAt(img, 1)+12:], img.sections[0].VirtualAddress+0x100)
			return b
		}, "at RVA"},
		// Issue 10: an empty section whose PointerToRawData points far
		// past the file passed Parse, then Section sliced out of range.
		{"empty section pointing past the file", func(img *Image, b []byte) []byte {
			le.PutUint32(b[sectionHeaderAt(img, 1)+16:], 0)          // SizeOfRawData
			le.PutUint32(b[sectionHeaderAt(img, 1)+20:], 0xffffff00) // PointerToRawData
			return b
		}, "section \".reloc\" raw data pointer 0xffffff00 is outside the file"},
		{"raw data in headers", func(img *Image, b []byte) []byte {
			le.PutUint32(b[sectionHeaderAt(img, 0)+20:], 0x200)
			return b
		}, "overlaps headers"},
		{"cert table outside file", func(img *Image, b []byte) []byte {
			off, _ := img.CertTableEntryOffset()
			le.PutUint32(b[off:], uint32(len(b)))
			le.PutUint32(b[off+4:], 0x100)
			return b
		}, "certificate table"},
		{"cert table size overflow", func(img *Image, b []byte) []byte {
			off, _ := img.CertTableEntryOffset()
			le.PutUint32(b[off:], 0x11000)
			le.PutUint32(b[off+4:], 0xfffffff8)
			return b
		}, "outside the file"},
		{"cert table unaligned", func(img *Image, b []byte) []byte {
			off, _ := img.CertTableEntryOffset()
			le.PutUint32(b[off:], 0x11401)
			le.PutUint32(b[off+4:], 8)
			return b
		}, "not 8-byte aligned"},
		{"cert table over sections", func(img *Image, b []byte) []byte {
			off, _ := img.CertTableEntryOffset()
			le.PutUint32(b[off:], 0x11000)
			le.PutUint32(b[off+4:], 16)
			return b
		}, "overlaps section data"},
		{"cert entry length", func(img *Image, b []byte) []byte {
			b = append(b, make([]byte, 7+16)...)
			start := (len(b) - 16) &^ 7
			le.PutUint32(b[start:], 4)
			off, _ := img.CertTableEntryOffset()
			le.PutUint32(b[off:], uint32(start))
			le.PutUint32(b[off+4:], 16)
			return b
		}, "length 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(mutate(t, tt.edit))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() = %v, want %v containing %q", err, ErrFormat, tt.want)
			}
		})
	}
}

// TestAccessorsBounded: the readers and editors never slice outside the
// file, even for a section table edited past what Parse accepts.
func TestAccessorsBounded(t *testing.T) {
	img, err := Parse(readStub(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &img.sections[1]
	name := sectionName(h.Name)
	h.SizeOfRawData, h.PointerToRawData = 0, 0xffffff00
	if got := img.Section(name); len(got) != 0 {
		t.Errorf("Section(%q) = %d bytes, want none", name, len(got))
	}
	if err := img.ReplaceSection(name, nil); err != nil {
		t.Errorf("ReplaceSection(%q, nil) = %v, want nil", name, err)
	}
	h.SizeOfRawData = 0x200
	if got := img.Section(name); len(got) != 0 {
		t.Errorf("Section(%q) out of the file = %d bytes, want none", name, len(got))
	}
}

// TestParseRVAOverflow: a section reaching past 4 GiB of address space is
// refused, so AddSection never computes a truncated RVA.
func TestParseRVAOverflow(t *testing.T) {
	b := mutate(t, func(img *Image, b []byte) []byte {
		last := len(img.sections) - 1
		binary.LittleEndian.PutUint32(b[sectionHeaderAt(img, last)+8:], 0x2000)      // VirtualSize
		binary.LittleEndian.PutUint32(b[sectionHeaderAt(img, last)+12:], 0xfffff000) // VirtualAddress
		return b
	})
	_, err := Parse(b)
	if want := "ends past the 4 GiB address space"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse(section at RVA 0xfffff000) = %v, want an error containing %q", err, want)
	}
}
