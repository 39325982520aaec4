package pecoff

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Offsets and sizes fixed by the PE format. The optional-header offsets are
// those of PE32+ ("PE Format", Optional Header Windows-Specific Fields and
// Data Directories); image_test.go checks them against debug/pe's struct.
const (
	dosHeaderSize       = 64
	lfanewOffset        = 0x3c
	peSignatureSize     = 4
	coffHeaderSize      = 20
	sectionHeaderSize   = 40
	magicPE32Plus       = 0x20b
	optSizeOfInitData   = 8
	optSectionAlign     = 32
	optFileAlign        = 36
	optSizeOfImage      = 56
	optSizeOfHeaders    = 60
	optCheckSum         = 64
	optNumberOfRva      = 108
	optDataDirectory    = 112
	dataDirEntrySize    = 8
	dirSecurity         = 4 // IMAGE_DIRECTORY_ENTRY_SECURITY: the certificate table
	maxSectionNameBytes = 8
	maxImageSize        = 1<<32 - 1 // RVAs, offsets and sizes are 32-bit
)

// Section characteristics used for UKI sections.
const (
	SectionCode            = 0x00000020 // IMAGE_SCN_CNT_CODE
	SectionInitializedData = 0x00000040 // IMAGE_SCN_CNT_INITIALIZED_DATA
	SectionMemRead         = 0x40000000 // IMAGE_SCN_MEM_READ
)

// ErrFormat is wrapped by every error about a malformed image.
var ErrFormat = errors.New("malformed PE image")

// Image is a PE32+ image held in memory. Its methods edit the bytes in place
// and keep the headers consistent; Bytes returns the current file.
type Image struct {
	data     []byte
	peOff    int // offset of the "PE\0\0" signature
	optOff   int // offset of the optional header
	optSize  int // SizeOfOptionalHeader
	numDirs  int // NumberOfRvaAndSizes
	sections []pe.SectionHeader32
	stale    bool // CheckSum needs recomputing
}

// Section describes one section of an Image.
type Section struct {
	Name            string
	VirtualAddress  uint32
	VirtualSize     uint32
	Offset          uint32 // PointerToRawData
	Size            uint32 // SizeOfRawData
	Characteristics uint32
}

// Parse checks that data is a well-formed PE32+ image and returns it. The
// image owns a copy of data.
func Parse(data []byte) (*Image, error) {
	img := &Image{data: bytes.Clone(data)}
	if err := img.parseHeaders(); err != nil {
		return nil, fmt.Errorf("parse PE: %w", err)
	}
	if err := img.parseSections(); err != nil {
		return nil, fmt.Errorf("parse PE: %w", err)
	}
	if err := img.checkLayout(); err != nil {
		return nil, fmt.Errorf("parse PE: %w", err)
	}
	return img, nil
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

func (img *Image) parseHeaders() error {
	d := img.data
	if len(d) < dosHeaderSize {
		return formatErr("file of %d bytes is shorter than a DOS header", len(d))
	}
	if uint64(len(d)) > maxImageSize {
		return formatErr("file of %d bytes is larger than a PE image can be (4 GiB)", len(d))
	}
	if d[0] != 'M' || d[1] != 'Z' {
		return formatErr("no MZ signature")
	}
	img.peOff = int(binary.LittleEndian.Uint32(d[lfanewOffset:]))
	if img.peOff < dosHeaderSize || img.peOff > len(d)-peSignatureSize-coffHeaderSize {
		return formatErr("e_lfanew %#x outside the file (%d bytes)", img.peOff, len(d))
	}
	if !bytes.Equal(d[img.peOff:img.peOff+4], []byte("PE\x00\x00")) {
		return formatErr("no PE signature at e_lfanew %#x", img.peOff)
	}
	f, err := pe.NewFile(bytes.NewReader(d))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if _, ok := f.OptionalHeader.(*pe.OptionalHeader64); !ok {
		return formatErr("not a PE32+ image (optional header magic is not %#x)", magicPE32Plus)
	}
	img.optOff = img.peOff + peSignatureSize + coffHeaderSize
	img.optSize = int(f.SizeOfOptionalHeader)
	if img.optSize < optDataDirectory || img.optOff+img.optSize > len(d) {
		return formatErr("optional header of %d bytes does not fit", img.optSize)
	}
	img.numDirs = min(int(img.u32(optNumberOfRva)), (img.optSize-optDataDirectory)/dataDirEntrySize)
	return img.checkAlignment()
}

func (img *Image) checkAlignment() error {
	fa, sa := img.FileAlignment(), img.SectionAlignment()
	if fa == 0 || fa&(fa-1) != 0 {
		return formatErr("FileAlignment %#x is not a power of two", fa)
	}
	if sa == 0 || sa&(sa-1) != 0 || sa < fa {
		return formatErr("SectionAlignment %#x is not a power of two >= FileAlignment %#x", sa, fa)
	}
	return nil
}

func (img *Image) parseSections() error {
	n := int(binary.LittleEndian.Uint16(img.data[img.peOff+6:]))
	end := img.sectionTableOff() + n*sectionHeaderSize
	if end > len(img.data) {
		return formatErr("section table of %d entries ends at %#x, past the end of the file (%#x)", n, end, len(img.data))
	}
	if hs := int(img.u32(optSizeOfHeaders)); end > hs {
		return formatErr("section table ends at %#x, past SizeOfHeaders %#x", end, hs)
	}
	img.sections = make([]pe.SectionHeader32, n)
	_, err := binary.Decode(img.data[img.sectionTableOff():end], binary.LittleEndian, img.sections)
	return err
}

// checkLayout rejects sections outside the file, overlapping sections and a
// certificate table that does not sit after all section data.
func (img *Image) checkLayout() error {
	if err := img.checkRaw(); err != nil {
		return err
	}
	if err := img.checkVirtual(); err != nil {
		return err
	}
	return img.checkCertTable()
}

func (img *Image) checkRaw() error {
	secs := img.Sections()
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].Offset < secs[j].Offset })
	prevEnd, prevName := uint64(img.u32(optSizeOfHeaders)), "headers"
	for _, s := range secs {
		if s.Size == 0 {
			// No raw data: the pointer is unused, but must not point
			// outside the file (Section and the editors never slice
			// there, yet a tool reading the header might).
			if uint64(s.Offset) > uint64(len(img.data)) {
				return formatErr("section %q raw data pointer %#x is outside the file (%#x bytes)", s.Name, s.Offset, len(img.data))
			}
			continue
		}
		end := uint64(s.Offset) + uint64(s.Size)
		if end > uint64(len(img.data)) {
			return formatErr("section %q raw data [%#x,%#x) is outside the file (%#x bytes)", s.Name, s.Offset, end, len(img.data))
		}
		if uint64(s.Offset) < prevEnd {
			return formatErr("section %q raw data at %#x overlaps %s (ending at %#x)", s.Name, s.Offset, prevName, prevEnd)
		}
		prevEnd, prevName = end, fmt.Sprintf("section %q", s.Name)
	}
	return nil
}

func (img *Image) checkVirtual() error {
	secs := img.Sections()
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].VirtualAddress < secs[j].VirtualAddress })
	var prevEnd uint64
	prevName := "headers"
	for _, s := range secs {
		if uint64(s.VirtualAddress) < prevEnd {
			return formatErr("section %q at RVA %#x overlaps %s (ending at %#x)", s.Name, s.VirtualAddress, prevName, prevEnd)
		}
		end := uint64(s.VirtualAddress) + uint64(virtualSize(s))
		if end > maxImageSize {
			return formatErr("section %q at RVA %#x of %#x bytes ends past the 4 GiB address space", s.Name, s.VirtualAddress, virtualSize(s))
		}
		prevEnd, prevName = end, fmt.Sprintf("section %q", s.Name)
	}
	return nil
}

func virtualSize(s Section) uint32 {
	if s.VirtualSize == 0 {
		return s.Size
	}
	return s.VirtualSize
}

// Sections returns the section headers in table order.
func (img *Image) Sections() []Section {
	out := make([]Section, len(img.sections))
	for i, h := range img.sections {
		out[i] = Section{
			Name:            sectionName(h.Name),
			VirtualAddress:  h.VirtualAddress,
			VirtualSize:     h.VirtualSize,
			Offset:          h.PointerToRawData,
			Size:            h.SizeOfRawData,
			Characteristics: h.Characteristics,
		}
	}
	return out
}

func sectionName(b [8]uint8) string {
	return strings.TrimRight(string(b[:]), "\x00")
}

// Section returns the named section's contents: its raw data cut to
// VirtualSize (the loaded size), or nil if there is no such section. A
// section without raw data, or whose raw data lies outside the file, has
// empty contents.
func (img *Image) Section(name string) []byte {
	for _, s := range img.Sections() {
		if s.Name == name {
			start, end, ok := img.rawRange(s.Offset, min(s.Size, virtualSize(s)))
			if !ok {
				return []byte{}
			}
			return img.data[start:end:end]
		}
	}
	return nil
}

// rawRange returns [off, off+size) as file offsets when size is not zero
// and the range lies inside the file. Parse checked every section, so this
// only guards the accessors against an Image edited out of bounds.
func (img *Image) rawRange(off, size uint32) (start, end int, ok bool) {
	e := uint64(off) + uint64(size)
	if size == 0 || e > uint64(len(img.data)) {
		return 0, 0, false
	}
	return int(off), int(e), true
}

// Bytes returns the image file. The slice aliases the Image: copy it before
// editing the Image further if it must stay unchanged.
func (img *Image) Bytes() []byte {
	img.finalize()
	return img.data
}

// FileAlignment returns the optional header's FileAlignment.
func (img *Image) FileAlignment() uint32 { return img.u32(optFileAlign) }

// SectionAlignment returns the optional header's SectionAlignment.
func (img *Image) SectionAlignment() uint32 { return img.u32(optSectionAlign) }

// SizeOfHeaders returns the optional header's SizeOfHeaders.
func (img *Image) SizeOfHeaders() uint32 { return img.u32(optSizeOfHeaders) }

// SizeOfImage returns the optional header's SizeOfImage.
func (img *Image) SizeOfImage() uint32 { return img.u32(optSizeOfImage) }

// CheckSum returns the optional header's CheckSum field.
func (img *Image) CheckSum() uint32 {
	img.finalize()
	return img.u32(optCheckSum)
}

func (img *Image) sectionTableOff() int { return img.optOff + img.optSize }

func (img *Image) u32(optField int) uint32 {
	return binary.LittleEndian.Uint32(img.data[img.optOff+optField:])
}

func (img *Image) putU32(optField int, v uint32) {
	binary.LittleEndian.PutUint32(img.data[img.optOff+optField:], v)
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
