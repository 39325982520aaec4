package authenticode

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrPKCS7 is wrapped by errors about a malformed PKCS #7 structure.
var ErrPKCS7 = errors.New("malformed PKCS #7 signature")

func pkcs7Err(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPKCS7, fmt.Sprintf(format, args...))
}

// parsedSignedData is a decoded SignedData with one SignerInfo.
type parsedSignedData struct {
	contentType asn1.ObjectIdentifier
	content     *asn1.RawValue // the element inside [0] EXPLICIT, nil if detached
	certs       []*x509.Certificate
	signer      parsedSignerInfo
}

type parsedSignerInfo struct {
	issuer      []byte
	serial      *big.Int
	digestAlg   crypto.Hash
	attrs       []byte // the [0] attributes re-tagged as a SET, nil if absent
	attrValues  map[string][]asn1.RawValue
	sigAlg      asn1.ObjectIdentifier
	signature   []byte
	signingTime time.Time
	nested      [][]byte // DER ContentInfos of nested signatures
}

// parseContentInfo decodes a ContentInfo holding SignedData, or a bare
// SignedData (as UEFI authenticated variables carry it).
func parseContentInfo(der []byte) (*parsedSignedData, error) {
	var top asn1.RawValue
	if err := unmarshalAll(der, &top); err != nil {
		return nil, pkcs7Err("outer element: %v", err)
	}
	if err := wantSequence(top, "outer element"); err != nil {
		return nil, err
	}
	kids, err := elements(top.Bytes)
	if err != nil || len(kids) == 0 {
		return nil, pkcs7Err("outer SEQUENCE: %v", err)
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(kids[0].FullBytes, &oid); err == nil {
		if !oid.Equal(oidSignedData) {
			return nil, pkcs7Err("content type %v is not signedData", oid)
		}
		if len(kids) != 2 || !isContext(kids[1], 0) {
			return nil, pkcs7Err("ContentInfo has no [0] content")
		}
		var sd asn1.RawValue
		if err := unmarshalAll(kids[1].Bytes, &sd); err != nil {
			return nil, pkcs7Err("SignedData: %v", err)
		}
		if err := wantSequence(sd, "SignedData"); err != nil {
			return nil, err
		}
		return parseSignedData(sd.Bytes)
	}
	return parseSignedData(top.Bytes)
}

// wantSequence checks that rv is a universal constructed SEQUENCE: the tag
// is part of what the signer produced, and sbverify and osslsigncode
// reject anything else (a 0x8c in place of 0x30, say).
func wantSequence(rv asn1.RawValue, what string) error {
	return wantUniversal(rv, asn1.TagSequence, what)
}

func wantUniversal(rv asn1.RawValue, tag int, what string) error {
	if rv.Class != asn1.ClassUniversal || rv.Tag != tag || rv.IsCompound != (tag == asn1.TagSequence || tag == asn1.TagSet) {
		return pkcs7Err("%s: tag %#02x, want %s", what, firstByte(rv.FullBytes), tagName(tag))
	}
	return nil
}

func tagName(tag int) string {
	switch tag {
	case asn1.TagSequence:
		return "SEQUENCE (0x30)"
	case asn1.TagSet:
		return "SET (0x31)"
	case asn1.TagInteger:
		return "INTEGER (0x02)"
	}
	return fmt.Sprintf("universal tag %d", tag)
}

func firstByte(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// isContext reports whether rv is the constructed context-specific [tag].
func isContext(rv asn1.RawValue, tag int) bool {
	return rv.Class == asn1.ClassContextSpecific && rv.Tag == tag && rv.IsCompound
}

// parseSignedData decodes the fields of SignedData (RFC 2315 section 9.1):
// version, digestAlgorithms, contentInfo, [0] certificates, [1] crls,
// signerInfos.
func parseSignedData(b []byte) (*parsedSignedData, error) {
	kids, err := elements(b)
	if err != nil {
		return nil, pkcs7Err("SignedData: %v", err)
	}
	if len(kids) < 4 {
		return nil, pkcs7Err("SignedData has %d fields, want at least 4", len(kids))
	}
	for i, want := range []struct {
		tag  int
		what string
	}{{asn1.TagInteger, "SignedData version"}, {asn1.TagSet, "SignedData digestAlgorithms"}, {asn1.TagSequence, "SignedData contentInfo"}} {
		if err := wantUniversal(kids[i], want.tag, want.what); err != nil {
			return nil, err
		}
	}
	var p parsedSignedData
	if err := p.parseContent(kids[2]); err != nil {
		return nil, err
	}
	rest := kids[3:]
	if isContext(rest[0], 0) {
		if p.certs, err = x509.ParseCertificates(rest[0].Bytes); err != nil {
			return nil, pkcs7Err("certificates: %v", err)
		}
		rest = rest[1:]
	}
	if len(rest) > 0 && isContext(rest[0], 1) {
		rest = rest[1:] // CRLs: not used
	}
	if len(rest) != 1 || wantUniversal(rest[0], asn1.TagSet, "") != nil {
		return nil, pkcs7Err("SignedData has no signerInfos SET")
	}
	infos, err := elements(rest[0].Bytes)
	if err != nil || len(infos) != 1 {
		return nil, pkcs7Err("signerInfos: want exactly one SignerInfo (err %v)", err)
	}
	if err := wantSequence(infos[0], "SignerInfo"); err != nil {
		return nil, err
	}
	p.signer, err = parseSignerInfo(infos[0].Bytes)
	return &p, err
}

func (p *parsedSignedData) parseContent(rv asn1.RawValue) error {
	kids, err := elements(rv.Bytes)
	if err != nil || len(kids) == 0 {
		return pkcs7Err("contentInfo: %v", err)
	}
	if _, err := asn1.Unmarshal(kids[0].FullBytes, &p.contentType); err != nil {
		return pkcs7Err("contentInfo type: %v", err)
	}
	if len(kids) == 1 {
		return nil
	}
	if !isContext(kids[1], 0) {
		return pkcs7Err("contentInfo content is not [0]")
	}
	p.content = new(asn1.RawValue)
	if err := unmarshalAll(kids[1].Bytes, p.content); err != nil {
		return pkcs7Err("contentInfo content: %v", err)
	}
	return nil
}

func parseSignerInfo(b []byte) (parsedSignerInfo, error) {
	var s parsedSignerInfo
	kids, err := elements(b)
	if err != nil || len(kids) < 5 {
		return s, pkcs7Err("SignerInfo: %d fields (err %v)", len(kids), err)
	}
	var ias issuerAndSerial
	if err := unmarshalAll(kids[1].FullBytes, &ias); err != nil {
		return s, pkcs7Err("issuerAndSerialNumber: %v", err)
	}
	s.issuer, s.serial = ias.Issuer.FullBytes, ias.SerialNumber
	var alg pkix.AlgorithmIdentifier
	if err := unmarshalAll(kids[2].FullBytes, &alg); err != nil {
		return s, pkcs7Err("digestAlgorithm: %v", err)
	}
	if s.digestAlg, err = hashFromOID(alg.Algorithm); err != nil {
		return s, pkcs7Err("%v", err)
	}
	rest := kids[3:]
	if isContext(rest[0], 0) {
		if err := s.parseAttributes(rest[0]); err != nil {
			return s, err
		}
		rest = rest[1:]
	}
	if len(rest) < 2 {
		return s, pkcs7Err("SignerInfo: missing signature")
	}
	if err := unmarshalAll(rest[0].FullBytes, &alg); err != nil {
		return s, pkcs7Err("digestEncryptionAlgorithm: %v", err)
	}
	s.sigAlg = alg.Algorithm
	if err := unmarshalAll(rest[1].FullBytes, &s.signature); err != nil {
		return s, pkcs7Err("encryptedDigest: %v", err)
	}
	switch rest = rest[2:]; {
	case len(rest) == 0:
		return s, nil
	case len(rest) > 1 || !isContext(rest[0], 1):
		return s, pkcs7Err("SignerInfo: %d unexpected fields after encryptedDigest", len(rest))
	}
	return s, s.parseUnauthenticated(rest[0])
}

// parseUnauthenticated keeps the nested signatures (Authenticode's
// SPC_NESTED_SIGNATURE attribute, each value a ContentInfo) of the [1]
// unauthenticatedAttributes; other attributes (timestamps) are skipped.
func (s *parsedSignerInfo) parseUnauthenticated(rv asn1.RawValue) error {
	kids, err := elements(rv.Bytes)
	if err != nil {
		return pkcs7Err("unauthenticatedAttributes: %v", err)
	}
	for _, k := range kids {
		var a attribute
		if err := unmarshalAll(k.FullBytes, &a); err != nil {
			return pkcs7Err("unauthenticated attribute: %v", err)
		}
		if a.Type.Equal(oidNestedSignature) {
			for _, v := range a.Values {
				s.nested = append(s.nested, v.FullBytes)
			}
		}
	}
	return nil
}

// parseAttributes keeps the attributes as signed: the [0] IMPLICIT tag
// replaced by the SET tag they were hashed with.
func (s *parsedSignerInfo) parseAttributes(rv asn1.RawValue) error {
	s.attrs = bytes.Clone(rv.FullBytes)
	s.attrs[0] = 0x31
	kids, err := elements(rv.Bytes)
	if err != nil {
		return pkcs7Err("authenticatedAttributes: %v", err)
	}
	s.attrValues = map[string][]asn1.RawValue{}
	for _, k := range kids {
		var a attribute
		if err := unmarshalAll(k.FullBytes, &a); err != nil {
			return pkcs7Err("attribute: %v", err)
		}
		if _, dup := s.attrValues[a.Type.String()]; dup {
			return pkcs7Err("attribute %v appears twice", a.Type)
		}
		s.attrValues[a.Type.String()] = a.Values
	}
	if st, ok := s.attrValues[oidSigningTime.String()]; ok && len(st) == 1 {
		_, _ = asn1.Unmarshal(st[0].FullBytes, &s.signingTime)
	}
	return nil
}

// attr returns the single value of attribute oid.
func (s *parsedSignerInfo) attr(oid asn1.ObjectIdentifier) (asn1.RawValue, error) {
	v, ok := s.attrValues[oid.String()]
	if !ok || len(v) != 1 {
		return asn1.RawValue{}, pkcs7Err("authenticated attribute %v missing or not single-valued", oid)
	}
	return v[0], nil
}

// signerCert finds the certificate named by the SignerInfo.
func (p *parsedSignedData) signerCert() (*x509.Certificate, error) {
	for _, c := range p.certs {
		if bytes.Equal(c.RawIssuer, p.signer.issuer) && c.SerialNumber.Cmp(p.signer.serial) == 0 {
			return c, nil
		}
	}
	return nil, pkcs7Err("signer certificate (serial %v) not among the %d embedded certificates", p.signer.serial, len(p.certs))
}
