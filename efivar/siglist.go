package efivar

import (
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// SignatureListHeader is the fixed part of an EFI_SIGNATURE_LIST (UEFI
// 2.10, 32.4.1). It is followed by SignatureHeaderSize bytes of header and
// then signatures of SignatureSize bytes each.
type SignatureListHeader struct {
	SignatureType       GUID
	SignatureListSize   uint32
	SignatureHeaderSize uint32
	SignatureSize       uint32
}

const sigListHeaderSize = 28

// Signature is one EFI_SIGNATURE_DATA: its owner and the data (an X.509
// certificate in DER, or a hash).
type Signature struct {
	Owner GUID
	Data  []byte
}

// SignatureList is an EFI_SIGNATURE_LIST of one signature type.
type SignatureList struct {
	Type       GUID
	Header     []byte
	Signatures []Signature
}

// ErrSignatureList is wrapped by errors about malformed signature lists.
var ErrSignatureList = errors.New("malformed EFI_SIGNATURE_LIST")

// X509List returns a signature list holding one certificate, owned by
// owner. Each certificate gets its own list because every signature of a
// list has the same size.
func X509List(owner GUID, cert *x509.Certificate) SignatureList {
	return SignatureList{Type: CertX509, Signatures: []Signature{{Owner: owner, Data: cert.Raw}}}
}

// AppendSignatureLists encodes lists back to back, as a PK, KEK or db
// variable holds them.
func AppendSignatureLists(b []byte, lists ...SignatureList) ([]byte, error) {
	for _, l := range lists {
		size := 0
		if len(l.Signatures) > 0 {
			size = 16 + len(l.Signatures[0].Data)
		}
		h := SignatureListHeader{
			SignatureType:       l.Type,
			SignatureListSize:   uint32(sigListHeaderSize + len(l.Header) + size*len(l.Signatures)),
			SignatureHeaderSize: uint32(len(l.Header)),
			SignatureSize:       uint32(size),
		}
		b, _ = binary.Append(b, binary.LittleEndian, &h)
		b = append(b, l.Header...)
		for i, s := range l.Signatures {
			if 16+len(s.Data) != size {
				return nil, fmt.Errorf("encode signature list: signature %d has %d bytes, the list's first has %d", i, len(s.Data), size-16)
			}
			b = append(b, s.Owner[:]...)
			b = append(b, s.Data...)
		}
	}
	return b, nil
}

// ParseSignatureLists decodes the signature lists of a PK, KEK, db or dbx
// variable (or an .esl file).
func ParseSignatureLists(b []byte) ([]SignatureList, error) {
	var lists []SignatureList
	for off := 0; off < len(b); {
		var h SignatureListHeader
		if _, err := binary.Decode(b[off:], binary.LittleEndian, &h); err != nil {
			return nil, fmt.Errorf("%w: list at %#x: truncated header", ErrSignatureList, off)
		}
		l, err := parseSignatureList(h, b[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: list at %#x: %w", ErrSignatureList, off, err)
		}
		lists = append(lists, l)
		off += int(h.SignatureListSize)
	}
	return lists, nil
}

func parseSignatureList(h SignatureListHeader, b []byte) (SignatureList, error) {
	l := SignatureList{Type: h.SignatureType}
	total, hdr, size := uint64(h.SignatureListSize), uint64(h.SignatureHeaderSize), uint64(h.SignatureSize)
	if total > uint64(len(b)) || total < sigListHeaderSize+hdr {
		return l, fmt.Errorf("SignatureListSize %d does not fit (%d bytes left, header %d)", total, len(b), hdr)
	}
	body := total - sigListHeaderSize - hdr
	if size < 16 || body%size != 0 {
		if body == 0 && size == 0 {
			return l, fmt.Errorf("empty list")
		}
		return l, fmt.Errorf("SignatureSize %d does not divide the %d bytes of signatures", size, body)
	}
	l.Header = b[sigListHeaderSize : sigListHeaderSize+hdr]
	for p := sigListHeaderSize + hdr; p < total; p += size {
		var s Signature
		copy(s.Owner[:], b[p:p+16])
		s.Data = b[p+16 : p+size]
		l.Signatures = append(l.Signatures, s)
	}
	return l, nil
}

// Certificates returns the X.509 certificates of lists; entries of other
// types are skipped.
func Certificates(lists []SignatureList) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, l := range lists {
		if l.Type != CertX509 {
			continue
		}
		for _, s := range l.Signatures {
			c, err := x509.ParseCertificate(s.Data)
			if err != nil {
				return nil, fmt.Errorf("parse certificate owned by %v: %w", s.Owner, err)
			}
			certs = append(certs, c)
		}
	}
	return certs, nil
}
