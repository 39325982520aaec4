package pecoff

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WIN_CERTIFICATE constants ("PE Format", The Attribute Certificate Table).
const (
	CertRevision2          = 0x0200 // WIN_CERT_REVISION_2_0
	CertTypePKCSSignedData = 0x0002 // WIN_CERT_TYPE_PKCS_SIGNED_DATA
	certAlign              = 8
)

// ErrUnsigned is returned when an image has no certificate table.
var ErrUnsigned = errors.New("image has no certificate table")

// WinCertificateHeader is the fixed header of one attribute certificate
// entry (WIN_CERTIFICATE); Length counts the header and the data but not
// the padding to the next 8-byte boundary.
type WinCertificateHeader struct {
	Length          uint32
	Revision        uint16
	CertificateType uint16
}

// Certificate is one entry of the attribute certificate table.
type Certificate struct {
	Revision uint16
	Type     uint16
	Data     []byte // for CertTypePKCSSignedData: a DER PKCS#7 ContentInfo
}

// CertTableEntryOffset returns the file offset of the Certificate Table
// data directory entry, which the Authenticode image hash skips.
func (img *Image) CertTableEntryOffset() (int, error) {
	if img.numDirs <= dirSecurity {
		return 0, formatErr("image has %d data directories, none for the certificate table", img.numDirs)
	}
	return img.optOff + optDataDirectory + dirSecurity*dataDirEntrySize, nil
}

// CertTable returns the file offset and size of the attribute certificate
// table (both zero when the image is unsigned).
func (img *Image) CertTable() (offset, size uint32) {
	off, err := img.CertTableEntryOffset()
	if err != nil {
		return 0, 0
	}
	return binary.LittleEndian.Uint32(img.data[off:]), binary.LittleEndian.Uint32(img.data[off+4:])
}

func (img *Image) setCertTable(offset, size uint32) {
	off, _ := img.CertTableEntryOffset()
	binary.LittleEndian.PutUint32(img.data[off:], offset)
	binary.LittleEndian.PutUint32(img.data[off+4:], size)
}

// checkCertTable requires the certificate table, when present, to sit
// 8-byte aligned after every section's data and inside the file.
func (img *Image) checkCertTable() error {
	off, size := img.CertTable()
	if off == 0 && size == 0 {
		return nil
	}
	end := uint64(off) + uint64(size)
	if end > uint64(len(img.data)) {
		return formatErr("certificate table [%#x,%#x) is outside the file (%#x bytes)", off, end, len(img.data))
	}
	if off%certAlign != 0 {
		return formatErr("certificate table offset %#x is not 8-byte aligned", off)
	}
	if dataEnd := img.sectionDataEnd(); uint64(off) < dataEnd {
		return formatErr("certificate table at %#x overlaps section data (ending at %#x)", off, dataEnd)
	}
	_, err := img.Certificates()
	return err
}

// sectionDataEnd returns the end of the headers and of the last section's
// raw data.
func (img *Image) sectionDataEnd() uint64 {
	end := uint64(img.SizeOfHeaders())
	for _, s := range img.sections {
		if s.SizeOfRawData > 0 {
			end = max(end, uint64(s.PointerToRawData)+uint64(s.SizeOfRawData))
		}
	}
	return end
}

// Certificates decodes the attribute certificate table.
func (img *Image) Certificates() ([]Certificate, error) {
	off, size := img.CertTable()
	if off == 0 && size == 0 {
		return nil, nil
	}
	end := uint64(off) + uint64(size)
	if end > uint64(len(img.data)) {
		return nil, formatErr("certificate table [%#x,%#x) is outside the file (%#x bytes)", off, end, len(img.data))
	}
	table := img.data[off:end]
	var certs []Certificate
	for pos := 0; pos < len(table); {
		var h WinCertificateHeader
		if _, err := binary.Decode(table[pos:], binary.LittleEndian, &h); err != nil {
			return nil, formatErr("certificate table entry at +%#x: truncated header", pos)
		}
		if h.Length < 8 || uint64(pos)+uint64(h.Length) > uint64(len(table)) {
			return nil, formatErr("certificate table entry at +%#x: length %d outside the table (%d bytes)", pos, h.Length, len(table))
		}
		certs = append(certs, Certificate{Revision: h.Revision, Type: h.CertificateType, Data: table[pos+8 : pos+int(h.Length)]})
		pos += int(alignUp(uint64(h.Length), certAlign))
	}
	return certs, nil
}

// PrepareForSigning pads an unsigned image with zeros to an 8-byte boundary,
// where the certificate table will start. Signers call it before computing
// the Authenticode hash, because the padding becomes part of the hashed
// trailing data.
func (img *Image) PrepareForSigning() error {
	if _, err := img.CertTableEntryOffset(); err != nil {
		return fmt.Errorf("prepare for signing: %w", err)
	}
	if off, size := img.CertTable(); off != 0 || size != 0 {
		return nil
	}
	if pad := alignUp(uint64(len(img.data)), certAlign) - uint64(len(img.data)); pad > 0 {
		img.data = append(img.data, make([]byte, pad)...)
		img.updateChecksum()
	}
	return nil
}

// AppendCertificate adds an entry to the end of the attribute certificate
// table (creating the table if needed) and updates the data directory and
// the checksum.
func (img *Image) AppendCertificate(c Certificate) error {
	if err := img.PrepareForSigning(); err != nil {
		return fmt.Errorf("append certificate: %w", err)
	}
	off, size := img.CertTable()
	if off == 0 {
		off = uint32(len(img.data))
	}
	if uint64(off)+uint64(size) != uint64(len(img.data)) {
		return fmt.Errorf("append certificate: %w: certificate table does not end the file", ErrFormat)
	}
	entry := binary.LittleEndian.AppendUint32(nil, uint32(8+len(c.Data)))
	entry = binary.LittleEndian.AppendUint16(entry, c.Revision)
	entry = binary.LittleEndian.AppendUint16(entry, c.Type)
	entry = append(entry, c.Data...)
	entry = append(entry, make([]byte, alignUp(uint64(len(entry)), certAlign)-uint64(len(entry)))...)
	if uint64(len(img.data))+uint64(len(entry)) > 1<<32-1 {
		return fmt.Errorf("append certificate: image would exceed 4 GiB")
	}
	img.data = append(img.data, entry...)
	img.setCertTable(off, size+uint32(len(entry)))
	img.updateChecksum()
	return nil
}

// StripCertificates removes the attribute certificate table, which must end
// the file, and zeroes its data directory entry.
func (img *Image) StripCertificates() error {
	off, size := img.CertTable()
	if off == 0 && size == 0 {
		return fmt.Errorf("strip certificates: %w", ErrUnsigned)
	}
	if uint64(off)+uint64(size) != uint64(len(img.data)) {
		return fmt.Errorf("strip certificates: %w: certificate table does not end the file", ErrFormat)
	}
	img.data = img.data[:off]
	img.setCertTable(0, 0)
	img.updateChecksum()
	return nil
}
