package pecoff

import (
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrNoRoom is returned when the stub's headers have no space left for
// another section header, or an existing section cannot take new contents.
var ErrNoRoom = errors.New("no room")

// ErrSigned is returned when an edit would invalidate existing signatures.
var ErrSigned = errors.New("image is signed; strip its signatures first")

// AddSection appends a section named name (at most 8 bytes) holding data,
// placed like ukify places it:
//
//  1. its header goes right after the last section header, which must still
//     end within SizeOfHeaders (rounded up to FileAlignment, as long as that
//     does not reach the first section's data);
//  2. its RVA is the end of the last section (VirtualAddress + VirtualSize)
//     rounded up to SectionAlignment; VirtualSize is len(data);
//  3. its file data starts at the end of the file rounded up to
//     FileAlignment, SizeOfRawData is len(data) rounded up to FileAlignment;
//  4. SizeOfInitializedData grows by len(data), SizeOfImage becomes the end
//     of the new section rounded up to SectionAlignment, and the checksum is
//     recomputed.
func (img *Image) AddSection(name string, data []byte, characteristics uint32) error {
	if err := img.checkEditable(name); err != nil {
		return fmt.Errorf("add section %q: %w", name, err)
	}
	hdrOff, err := img.reserveHeader()
	if err != nil {
		return fmt.Errorf("add section %q: %w", name, err)
	}
	h, err := img.placeSection(name, data, characteristics)
	if err != nil {
		return fmt.Errorf("add section %q: %w", name, err)
	}
	img.data = append(img.data, make([]byte, int(h.PointerToRawData)-len(img.data))...)
	img.data = append(img.data, data...)
	img.data = append(img.data, make([]byte, int(h.SizeOfRawData)-len(data))...)
	img.writeSectionHeader(hdrOff, h)
	img.sections = append(img.sections, h)
	binary.LittleEndian.PutUint16(img.data[img.peOff+6:], uint16(len(img.sections)))
	img.putU32(optSizeOfInitData, img.u32(optSizeOfInitData)+h.VirtualSize)
	img.putU32(optSizeOfImage, uint32(alignUp(uint64(h.VirtualAddress)+uint64(h.VirtualSize), uint64(img.SectionAlignment()))))
	img.updateChecksum()
	return nil
}

func (img *Image) checkEditable(name string) error {
	if len(name) == 0 || len(name) > maxSectionNameBytes {
		return fmt.Errorf("section name must be 1 to %d bytes", maxSectionNameBytes)
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("section name has a non-printable or non-ASCII byte %#x", c)
		}
	}
	if off, size := img.CertTable(); off != 0 || size != 0 {
		return ErrSigned
	}
	return nil
}

// reserveHeader returns the file offset for one more section header,
// growing SizeOfHeaders up to FileAlignment when the first section's data
// leaves room (ukify does the same).
func (img *Image) reserveHeader() (int, error) {
	off := img.sectionTableOff() + len(img.sections)*sectionHeaderSize
	limit := alignUp(uint64(img.SizeOfHeaders()), uint64(img.FileAlignment()))
	for _, s := range img.sections {
		if s.SizeOfRawData > 0 {
			limit = min(limit, uint64(s.PointerToRawData))
		}
	}
	if uint64(off+sectionHeaderSize) > limit {
		return 0, fmt.Errorf("%w: section table is full (%d headers; the next would end at %#x, past SizeOfHeaders %#x)",
			ErrNoRoom, len(img.sections), off+sectionHeaderSize, limit)
	}
	if uint64(img.SizeOfHeaders()) < limit {
		img.putU32(optSizeOfHeaders, uint32(limit))
	}
	return off, nil
}

// placeSection computes the new section's header (steps 2 and 3 of
// AddSection) in 64 bits, and refuses a layout that leaves the 32-bit
// address space or file size.
func (img *Image) placeSection(name string, data []byte, characteristics uint32) (pe.SectionHeader32, error) {
	var h pe.SectionHeader32
	copy(h.Name[:], name)
	var end uint64
	for _, s := range img.Sections() {
		end = max(end, uint64(s.VirtualAddress)+uint64(virtualSize(s)))
	}
	fa := uint64(img.FileAlignment())
	rva := alignUp(max(end, uint64(img.SizeOfHeaders())), uint64(img.SectionAlignment()))
	ptr := alignUp(uint64(len(img.data)), fa)
	raw := alignUp(uint64(len(data)), fa)
	if alignUp(rva+uint64(len(data)), uint64(img.SectionAlignment())) > maxImageSize || ptr+raw > maxImageSize {
		return h, fmt.Errorf("image would exceed 4 GiB")
	}
	h.VirtualAddress, h.VirtualSize = uint32(rva), uint32(len(data))
	h.PointerToRawData, h.SizeOfRawData = uint32(ptr), uint32(raw)
	h.Characteristics = characteristics
	return h, nil
}

func (img *Image) writeSectionHeader(off int, h pe.SectionHeader32) {
	_, _ = binary.Encode(img.data[off:off+sectionHeaderSize], binary.LittleEndian, &h)
}

// ReplaceSection swaps the contents of the existing section name for data,
// which must fit in the section's SizeOfRawData and must not make its
// VirtualSize reach the next section's RVA (ukify's rule for .sbat).
func (img *Image) ReplaceSection(name string, data []byte) error {
	if err := img.checkEditable(name); err != nil {
		return fmt.Errorf("replace section %q: %w", name, err)
	}
	i := img.sectionIndex(name)
	if i < 0 {
		return fmt.Errorf("replace section %q: no such section", name)
	}
	h := &img.sections[i]
	if uint64(len(data)) > uint64(h.SizeOfRawData) {
		return fmt.Errorf("replace section %q: %w: %d bytes do not fit in its %d bytes of raw data", name, ErrNoRoom, len(data), h.SizeOfRawData)
	}
	if next, ok := img.nextRVA(h.VirtualAddress); ok && uint64(h.VirtualAddress)+uint64(len(data)) > uint64(next) {
		return fmt.Errorf("replace section %q: %w: %d bytes would overlap the section at RVA %#x", name, ErrNoRoom, len(data), next)
	}
	if start, end, ok := img.rawRange(h.PointerToRawData, h.SizeOfRawData); ok {
		raw := img.data[start:end]
		clear(raw[copy(raw, data):])
	}
	h.VirtualSize = uint32(len(data))
	img.writeSectionHeader(img.sectionTableOff()+i*sectionHeaderSize, *h)
	img.updateChecksum()
	return nil
}

func (img *Image) sectionIndex(name string) int {
	for i, s := range img.sections {
		if sectionName(s.Name) == name {
			return i
		}
	}
	return -1
}

func (img *Image) nextRVA(rva uint32) (uint32, bool) {
	next, ok := uint32(0), false
	for _, s := range img.sections {
		if s.VirtualAddress > rva && (!ok || s.VirtualAddress < next) {
			next, ok = s.VirtualAddress, true
		}
	}
	return next, ok
}

// fileLocalSymsStripped is IMAGE_FILE_LOCAL_SYMS_STRIPPED.
const fileLocalSymsStripped = 0x0008

// StripSymbolTable removes a COFF symbol table (and its string table) that
// ends the file, as ukify does for stubs linked without stripping: image
// files should not carry one, and left in place it would become a gap
// between sections that Authenticode tools hash differently. It reports
// whether anything was removed; a table elsewhere in the file is left alone.
func (img *Image) StripSymbolTable() (bool, error) {
	coff := img.data[img.peOff+peSignatureSize:]
	ptr := uint64(binary.LittleEndian.Uint32(coff[8:]))
	n := uint64(binary.LittleEndian.Uint32(coff[12:]))
	if ptr == 0 {
		return false, nil
	}
	if off, size := img.CertTable(); off != 0 || size != 0 {
		return false, fmt.Errorf("strip symbol table: %w", ErrSigned)
	}
	end := ptr + 18*n // IMAGE_SYMBOL is 18 bytes
	if end+4 <= uint64(len(img.data)) {
		end += uint64(binary.LittleEndian.Uint32(img.data[end:])) // string table size includes its own 4 bytes
	}
	if end != uint64(len(img.data)) || ptr < img.sectionDataEnd() {
		return false, nil
	}
	img.data = img.data[:ptr]
	binary.LittleEndian.PutUint32(coff[8:], 0)
	binary.LittleEndian.PutUint32(coff[12:], 0)
	ch := binary.LittleEndian.Uint16(coff[18:])
	binary.LittleEndian.PutUint16(coff[18:], ch|fileLocalSymsStripped)
	img.updateChecksum()
	return true, nil
}
