package efivar

import (
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"

	"initos/authenticode"
)

// Variable attributes (UEFI 2.10, 8.2.1).
const (
	NonVolatile                       = 0x00000001
	BootserviceAccess                 = 0x00000002
	RuntimeAccess                     = 0x00000004
	TimeBasedAuthenticatedWriteAccess = 0x00000020
	AppendWrite                       = 0x00000040

	// AuthAttributes are the attributes of PK, KEK, db and dbx.
	AuthAttributes = NonVolatile | BootserviceAccess | RuntimeAccess | TimeBasedAuthenticatedWriteAccess
	// BootAttributes are the attributes of Boot####, BootOrder, BootNext.
	BootAttributes = NonVolatile | BootserviceAccess | RuntimeAccess
)

// Time is EFI_TIME (UEFI 2.10, 8.3).
type Time struct {
	Year       uint16
	Month      uint8
	Day        uint8
	Hour       uint8
	Minute     uint8
	Second     uint8
	Pad1       uint8
	Nanosecond uint32
	TimeZone   int16
	Daylight   uint8
	Pad2       uint8
}

// NewTime returns the EFI_TIME of t in UTC as authenticated variables use
// it: whole seconds, Nanosecond, TimeZone and Daylight zero.
func NewTime(t time.Time) Time {
	t = t.UTC()
	return Time{Year: uint16(t.Year()), Month: uint8(t.Month()), Day: uint8(t.Day()),
		Hour: uint8(t.Hour()), Minute: uint8(t.Minute()), Second: uint8(t.Second())}
}

// GoTime converts t (taken as UTC) to a time.Time.
func (t Time) GoTime() time.Time {
	return time.Date(int(t.Year), time.Month(t.Month), int(t.Day), int(t.Hour), int(t.Minute), int(t.Second), int(t.Nanosecond), time.UTC)
}

// WinCertificateUEFIGUID is the fixed part of WIN_CERTIFICATE_UEFI_GUID:
// the WIN_CERTIFICATE header (Length covers the whole structure including
// CertData) and CertType; the PKCS #7 SignedData follows.
type WinCertificateUEFIGUID struct {
	Length          uint32
	Revision        uint16
	CertificateType uint16
	CertType        GUID
}

const (
	winCertTypeEFIGUID = 0x0ef1
	winCertRevision2   = 0x0200
	authHeaderSize     = 16 + 24 // EFI_TIME + WinCertificateUEFIGUID
)

// ErrAuth is wrapped by errors about malformed authenticated payloads.
var ErrAuth = errors.New("malformed authenticated variable payload")

// SignedPayload is a decoded EFI_VARIABLE_AUTHENTICATION_2 followed by the
// new variable data: what an .auth file holds and SetVariable receives.
type SignedPayload struct {
	Time       Time
	SignedData []byte // DER PKCS #7 SignedData (detached)
	Data       []byte // the new variable contents
}

// signedBlob is what the PKCS #7 signature covers (UEFI 2.10, 8.2.2):
// VariableName (UTF-16, no terminator) || VendorGuid || Attributes ||
// TimeStamp || Data.
func signedBlob(name string, guid GUID, attrs uint32, t Time, data []byte) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(name)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	b = append(b, guid[:]...)
	b = binary.LittleEndian.AppendUint32(b, attrs)
	b, _ = binary.Append(b, binary.LittleEndian, &t)
	return append(b, data...)
}

// SignUpdate returns the time-based authenticated payload that sets
// variable name/guid to data with attrs, signed by key and cert (the
// current PK for PK and KEK, a KEK for db and dbx).
func SignUpdate(name string, guid GUID, attrs uint32, t time.Time, data []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	et := NewTime(t)
	sd, err := authenticode.SignDetached(signedBlob(name, guid, attrs, et, data), key, cert)
	if err != nil {
		return nil, fmt.Errorf("sign %s update: %w", name, err)
	}
	b, _ := binary.Append(nil, binary.LittleEndian, &et)
	wc := WinCertificateUEFIGUID{Length: uint32(24 + len(sd)), Revision: winCertRevision2, CertificateType: winCertTypeEFIGUID, CertType: CertTypePKCS7}
	b, _ = binary.Append(b, binary.LittleEndian, &wc)
	b = append(b, sd...)
	return append(b, data...), nil
}

// ParseSignedPayload decodes an authenticated variable payload.
func ParseSignedPayload(b []byte) (*SignedPayload, error) {
	var p SignedPayload
	var wc WinCertificateUEFIGUID
	if len(b) < authHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrAuth, len(b), authHeaderSize)
	}
	_, _ = binary.Decode(b, binary.LittleEndian, &p.Time)
	_, _ = binary.Decode(b[16:], binary.LittleEndian, &wc)
	switch {
	case wc.CertificateType != winCertTypeEFIGUID:
		return nil, fmt.Errorf("%w: certificate type %#x, want WIN_CERT_TYPE_EFI_GUID", ErrAuth, wc.CertificateType)
	case wc.CertType != CertTypePKCS7:
		return nil, fmt.Errorf("%w: CertType %v, want EFI_CERT_TYPE_PKCS7_GUID", ErrAuth, wc.CertType)
	case wc.Length < 24 || uint64(16)+uint64(wc.Length) > uint64(len(b)):
		return nil, fmt.Errorf("%w: dwLength %d outside the %d-byte payload", ErrAuth, wc.Length, len(b))
	}
	p.SignedData = b[authHeaderSize : 16+wc.Length]
	p.Data = b[16+wc.Length:]
	return &p, nil
}

// VerifyUpdate checks that payload is a valid update of name/guid with
// attrs signed by one of trusted, and returns the signer.
func VerifyUpdate(name string, guid GUID, attrs uint32, payload []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	p, err := ParseSignedPayload(payload)
	if err != nil {
		return nil, fmt.Errorf("verify %s update: %w", name, err)
	}
	signer, err := authenticode.VerifyDetached(p.SignedData, signedBlob(name, guid, attrs, p.Time, p.Data), trusted)
	if err != nil {
		return nil, fmt.Errorf("verify %s update: %w", name, err)
	}
	return signer, nil
}
