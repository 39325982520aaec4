package authenticode

import (
	"bytes"
	"crypto"
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
)

// Object identifiers (RFC 2315, RFC 5652, Authenticode specification).
var (
	oidData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidSpcIndirectData = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcSpOpusInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}
	oidSpcPEImageData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidNestedSignature = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 4, 1}
	oidMD5             = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA1            = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

var hashOIDs = []struct {
	oid asn1.ObjectIdentifier
	h   crypto.Hash
}{{oidSHA1, crypto.SHA1}, {oidSHA256, crypto.SHA256}, {oidSHA384, crypto.SHA384}, {oidSHA512, crypto.SHA512}}

func hashFromOID(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	for _, e := range hashOIDs {
		if e.oid.Equal(oid) {
			return e.h, nil
		}
	}
	if oid.Equal(oidMD5) {
		return 0, fmt.Errorf("unsupported digest algorithm MD5 (%v): UEFI firmware accepts SHA-1, SHA-256, SHA-384 and SHA-512 only", oid)
	}
	return 0, fmt.Errorf("unsupported digest algorithm %v", oid)
}

func oidFromHash(h crypto.Hash) (asn1.ObjectIdentifier, error) {
	for _, e := range hashOIDs {
		if e.h == h {
			return e.oid, nil
		}
	}
	return nil, fmt.Errorf("unsupported digest algorithm %v", h)
}

// algorithm returns an AlgorithmIdentifier with NULL parameters.
func algorithm(oid asn1.ObjectIdentifier) pkix.AlgorithmIdentifier {
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}
}

// contentInfo is RFC 2315 ContentInfo; Content holds [0] EXPLICIT content.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"optional"`
}

// signedData is RFC 2315 SignedData, for encoding.
type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	ContentInfo      contentInfo
	Certificates     asn1.RawValue `asn1:"optional"` // [0] IMPLICIT SET OF Certificate
	SignerInfos      []signerInfo  `asn1:"set"`
}

// signerInfo is RFC 2315 SignerInfo, for encoding.
type signerInfo struct {
	Version                   int
	IssuerAndSerialNumber     issuerAndSerial
	DigestAlgorithm           pkix.AlgorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue `asn1:"optional"` // [0] IMPLICIT SET OF Attribute
	DigestEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedDigest           []byte
}

type issuerAndSerial struct {
	Issuer       asn1.RawValue
	SerialNumber *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// spcIndirectDataContent is the Authenticode content: what is signed and
// the image digest.
type spcIndirectDataContent struct {
	Data          spcAttributeTypeAndOptionalValue
	MessageDigest digestInfo
}

type spcAttributeTypeAndOptionalValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"optional"`
}

type digestInfo struct {
	DigestAlgorithm pkix.AlgorithmIdentifier
	Digest          []byte
}

// context returns a context-specific constructed element [tag] with body.
func context(tag int, body []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true, Bytes: body}
}

// spcPEImageData returns SpcPeImageData with no flags and the file link
// "<<<Obsolete>>>" (a BMPString), as signing tools write it.
func spcPEImageData() asn1.RawValue {
	name := []byte{}
	for _, r := range "<<<Obsolete>>>" {
		name = append(name, 0, byte(r))
	}
	unicode := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: name} // SpcString.unicode [0] IMPLICIT BMPString
	uni, _ := asn1.Marshal(unicode)
	file, _ := asn1.Marshal(context(2, uni))  // SpcLink.file [2] EXPLICIT SpcString
	link, _ := asn1.Marshal(context(0, file)) // SpcPeImageData.file [0] EXPLICIT SpcLink
	flags, _ := asn1.Marshal(asn1.BitString{})
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: append(flags, link...)}
}

// setOf encodes elements as a DER SET OF: sorted by their encodings.
func setOf(elems [][]byte) []byte {
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, bytes.Compare)
	return bytes.Join(sorted, nil)
}

// elements splits the contents of a constructed element into its children.
func elements(b []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(b) > 0 {
		var rv asn1.RawValue
		rest, err := asn1.Unmarshal(b, &rv)
		if err != nil {
			return nil, err
		}
		out = append(out, rv)
		b = rest
	}
	return out, nil
}

// unmarshalAll is asn1.Unmarshal that rejects trailing bytes.
func unmarshalAll(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes after %T", len(rest), v)
	}
	return nil
}

type pkixAlg = pkix.AlgorithmIdentifier

func sha256Sum(b []byte) []byte {
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)
}
