package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"initos/pecoff"
)

// maxNesting bounds nested signatures inside nested signatures.
const maxNesting = 4

// Signature describes one Authenticode signature of an image.
type Signature struct {
	DigestAlgorithm crypto.Hash         // algorithm of the signed image digest
	Digest          []byte              // the image digest the signature covers
	Signer          *x509.Certificate   // the signing certificate
	Certificates    []*x509.Certificate // all embedded certificates
	SigningTime     time.Time           // zero when absent
	// Nested holds the signatures nested in this one's unauthenticated
	// attributes (signtool /as, osslsigncode -nest), which firmware
	// ignores. NestedErrors holds those that could not be decoded.
	Nested       []Signature
	NestedErrors []error
	parsed       *parsedSignedData
	spcContents  []byte // SpcIndirectDataContent without its tag and length
}

// Entry is one WIN_CERTIFICATE of an image's certificate table with its
// decoded signature, or the reason it could not be decoded.
type Entry struct {
	Index     int    // position in the certificate table
	Revision  uint16 // wRevision
	Type      uint16 // wCertificateType
	Length    int    // bytes of bCertificate (dwLength - 8)
	Signature *Signature
	Err       error // why Signature is nil
}

// Entries decodes each entry of img's certificate table on its own: an
// entry that is not PKCS #7 signed data, or that does not decode, gets an
// Err and the others are still decoded. The error is about the table
// itself.
func Entries(img *pecoff.Image) ([]Entry, error) {
	certs, err := img.Certificates()
	if err != nil {
		return nil, fmt.Errorf("read signatures: %w", err)
	}
	entries := make([]Entry, len(certs))
	for i, c := range certs {
		e := Entry{Index: i, Revision: c.Revision, Type: c.Type, Length: len(c.Data)}
		if c.Type != pecoff.CertTypePKCSSignedData {
			e.Err = fmt.Errorf("certificate type %#04x is not PKCS #7 signed data (%#04x)", c.Type, pecoff.CertTypePKCSSignedData)
		} else {
			e.Signature, e.Err = ParseSignature(c.Data)
		}
		entries[i] = e
	}
	return entries, nil
}

// Signatures decodes every PKCS #7 entry of img's certificate table,
// without checking them. It fails on the first entry that does not decode;
// Entries reports each entry on its own.
func Signatures(img *pecoff.Image) ([]Signature, error) {
	entries, err := Entries(img)
	if err != nil {
		return nil, err
	}
	var sigs []Signature
	for _, e := range entries {
		if e.Type != pecoff.CertTypePKCSSignedData {
			continue
		}
		if e.Err != nil {
			return nil, fmt.Errorf("read signature %d: %w", e.Index, e.Err)
		}
		sigs = append(sigs, *e.Signature)
	}
	return sigs, nil
}

// ParseSignature decodes the bCertificate of a WIN_CERTIFICATE entry: a
// DER PKCS #7 ContentInfo holding Authenticode SignedData. Zero bytes
// after the DER element are accepted: Microsoft's signtool and
// osslsigncode count the padding to the next 8-byte boundary in dwLength.
func ParseSignature(cert []byte) (*Signature, error) {
	der, err := trimPadding(cert)
	if err != nil {
		return nil, err
	}
	return parseSignatureDepth(der, 0)
}

// trimPadding returns the DER element at the start of b and checks that
// only zero bytes follow it.
func trimPadding(b []byte) ([]byte, error) {
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(b, &rv)
	if err != nil {
		return nil, pkcs7Err("outer element: %v", err)
	}
	if i := bytes.IndexFunc(rest, func(r rune) bool { return r != 0 }); i >= 0 {
		return nil, pkcs7Err("%d bytes follow the signature and are not zero padding (byte %d is %#02x)", len(rest), i, rest[i])
	}
	return b[:len(b)-len(rest)], nil
}

func parseSignatureDepth(der []byte, depth int) (*Signature, error) {
	p, err := parseContentInfo(der)
	if err != nil {
		return nil, err
	}
	if !p.contentType.Equal(oidSpcIndirectData) || p.content == nil {
		return nil, pkcs7Err("content type %v is not SpcIndirectDataContent", p.contentType)
	}
	var spc spcIndirectDataContent
	if err := unmarshalAll(p.content.FullBytes, &spc); err != nil {
		return nil, pkcs7Err("SpcIndirectDataContent: %v", err)
	}
	if !spc.Data.Type.Equal(oidSpcPEImageData) {
		return nil, pkcs7Err("SpcIndirectDataContent data type %v is not SpcPeImageData", spc.Data.Type)
	}
	h, err := hashFromOID(spc.MessageDigest.DigestAlgorithm.Algorithm)
	if err != nil {
		return nil, pkcs7Err("image digest: %v", err)
	}
	if len(spc.MessageDigest.Digest) != h.Size() {
		return nil, pkcs7Err("image digest: %d bytes, want %d for %v", len(spc.MessageDigest.Digest), h.Size(), h)
	}
	signer, err := p.signerCert()
	if err != nil {
		return nil, err
	}
	s := &Signature{
		DigestAlgorithm: h, Digest: spc.MessageDigest.Digest, Signer: signer,
		Certificates: p.certs, SigningTime: p.signer.signingTime,
		parsed: p, spcContents: p.content.Bytes,
	}
	s.parseNested(p.signer.nested, depth)
	return s, nil
}

// parseNested decodes the nested signatures, up to maxNesting deep.
func (s *Signature) parseNested(nested [][]byte, depth int) {
	for i, der := range nested {
		if depth+1 >= maxNesting {
			s.NestedErrors = append(s.NestedErrors, fmt.Errorf("nested signature %d: nested more than %d deep", i, maxNesting))
			continue
		}
		n, err := parseSignatureDepth(der, depth+1)
		if err != nil {
			s.NestedErrors = append(s.NestedErrors, fmt.Errorf("nested signature %d: %w", i, err))
			continue
		}
		s.Nested = append(s.Nested, *n)
	}
}
