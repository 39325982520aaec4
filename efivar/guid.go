package efivar

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is an EFI_GUID in its in-memory (mixed-endian) byte order: the
// first three fields little-endian, the last eight bytes as written.
type GUID [16]byte

// Well-known GUIDs (UEFI 2.10 sections 3.3 and 32.4.1).
var (
	GlobalVariable   = MustParseGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c") // EFI_GLOBAL_VARIABLE
	ImageSecurityDB  = MustParseGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f") // EFI_IMAGE_SECURITY_DATABASE_GUID
	CertX509         = MustParseGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072") // EFI_CERT_X509_GUID
	CertSHA256       = MustParseGUID("c1c41626-504c-4092-aca9-41f936934328") // EFI_CERT_SHA256_GUID
	CertTypePKCS7    = MustParseGUID("4aafd29d-68df-49ee-8aa9-347d375665a7") // EFI_CERT_TYPE_PKCS7_GUID
	PartitionTypeESP = MustParseGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b") // EFI System Partition
)

// ParseGUID parses the canonical text form
// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("parse GUID %q: want 8-4-4-4-12 hex digits", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("parse GUID %q: %w", s, err)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(g[8:], raw[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants; it panics on a bad literal.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// NewRandomGUID returns a random (version 4) GUID, e.g. a key owner.
func NewRandomGUID() (GUID, error) {
	var g GUID
	if _, err := rand.Read(g[:]); err != nil {
		return g, err
	}
	g[7] = g[7]&0x0f | 0x40 // version 4 in the high nibble of Data3
	g[8] = g[8]&0x3f | 0x80 // RFC 4122 variant
	return g, nil
}

// String returns the canonical lower-case text form.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:])
}
