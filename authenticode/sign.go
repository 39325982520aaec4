package authenticode

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"initos/pecoff"
)

// SignOptions tune Sign. The zero value signs with SHA-256 and no signing
// time.
type SignOptions struct {
	// SigningTime, when not zero, is written as the signingTime
	// authenticated attribute (use SOURCE_DATE_EPOCH for reproducible
	// output). Firmware ignores it.
	SigningTime time.Time
}

// ErrKey is wrapped by errors about an unusable signing key or certificate.
var ErrKey = errors.New("unusable signing key")

// Sign adds an Authenticode signature by key and cert to img's certificate
// table. Existing signatures are kept (they stay valid: the image hash
// excludes the table), so calling Sign again adds a second signature.
func Sign(img *pecoff.Image, key crypto.Signer, cert *x509.Certificate, opts SignOptions) error {
	if err := checkKey(key, cert); err != nil {
		return fmt.Errorf("sign image: %w", err)
	}
	if err := img.PrepareForSigning(); err != nil {
		return fmt.Errorf("sign image: %w", err)
	}
	der, err := SignedData(img, key, cert, opts)
	if err != nil {
		return err
	}
	if err := img.AppendCertificate(pecoff.Certificate{Revision: pecoff.CertRevision2, Type: pecoff.CertTypePKCSSignedData, Data: der}); err != nil {
		return fmt.Errorf("sign image: %w", err)
	}
	return nil
}

// SignedData returns the DER PKCS #7 ContentInfo (SignedData over
// SpcIndirectDataContent) signing img as it is now. Callers that append it
// themselves must call img.PrepareForSigning first.
func SignedData(img *pecoff.Image, key crypto.Signer, cert *x509.Certificate, opts SignOptions) ([]byte, error) {
	if err := checkKey(key, cert); err != nil {
		return nil, fmt.Errorf("sign image: %w", err)
	}
	digest, err := Hash(img, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign image: %w", err)
	}
	spc, err := asn1.Marshal(spcIndirectDataContent{
		Data:          spcAttributeTypeAndOptionalValue{Type: oidSpcPEImageData, Value: spcPEImageData()},
		MessageDigest: digestInfo{DigestAlgorithm: algorithm(oidSHA256), Digest: digest},
	})
	if err != nil {
		return nil, fmt.Errorf("sign image: encode SpcIndirectDataContent: %w", err)
	}
	var seq asn1.RawValue
	if err := unmarshalAll(spc, &seq); err != nil {
		return nil, fmt.Errorf("sign image: %w", err)
	}
	// The messageDigest attribute covers the SEQUENCE's contents only.
	return buildSignedData(signParams{
		contentType: oidSpcIndirectData, content: spc, contentDigest: sha256Sum(seq.Bytes),
		opus: true, signingTime: opts.SigningTime, attributes: true,
	}, key, cert)
}

// SignDetached returns a DER PKCS #7 SignedData (without the ContentInfo
// wrapper, as UEFI authenticated variables carry it) holding a SHA-256
// RSA signature of data, with no authenticated attributes and no content.
func SignDetached(data []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	if err := checkKey(key, cert); err != nil {
		return nil, fmt.Errorf("sign data: %w", err)
	}
	ci, err := buildSignedData(signParams{contentType: oidData, contentDigest: sha256Sum(data)}, key, cert)
	if err != nil {
		return nil, err
	}
	var outer contentInfo
	if err := unmarshalAll(ci, &outer); err != nil {
		return nil, fmt.Errorf("sign data: %w", err)
	}
	return outer.Content.Bytes, nil
}

type signParams struct {
	contentType   asn1.ObjectIdentifier
	content       []byte // DER of the embedded content; nil: detached
	contentDigest []byte // SHA-256 of what the signature covers
	attributes    bool   // sign authenticated attributes (Authenticode)
	opus          bool   // add an empty SpcSpOpusInfo attribute
	signingTime   time.Time
}

func buildSignedData(p signParams, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	si, err := buildSignerInfo(p, key, cert)
	if err != nil {
		return nil, err
	}
	inner := contentInfo{ContentType: p.contentType}
	if p.content != nil {
		inner.Content = context(0, p.content)
	}
	sd, err := asn1.Marshal(signedData{
		Version:          1,
		DigestAlgorithms: []pkixAlg{algorithm(oidSHA256)},
		ContentInfo:      inner,
		Certificates:     context(0, cert.Raw),
		SignerInfos:      []signerInfo{si},
	})
	if err != nil {
		return nil, fmt.Errorf("sign: encode SignedData: %w", err)
	}
	out, err := asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: context(0, sd)})
	if err != nil {
		return nil, fmt.Errorf("sign: encode ContentInfo: %w", err)
	}
	return out, nil
}

func buildSignerInfo(p signParams, key crypto.Signer, cert *x509.Certificate) (signerInfo, error) {
	si := signerInfo{
		Version:                   1,
		IssuerAndSerialNumber:     issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, SerialNumber: cert.SerialNumber},
		DigestAlgorithm:           algorithm(oidSHA256),
		DigestEncryptionAlgorithm: algorithm(oidRSAEncryption),
	}
	toSign := p.contentDigest
	if p.attributes {
		set, err := authenticatedAttributes(p)
		if err != nil {
			return si, err
		}
		si.AuthenticatedAttributes = context(0, set)
		full, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: set})
		if err != nil {
			return si, fmt.Errorf("sign: encode attributes: %w", err)
		}
		toSign = sha256Sum(full)
	}
	sig, err := key.Sign(rand.Reader, toSign, crypto.SHA256)
	if err != nil {
		return si, fmt.Errorf("sign: %w", err)
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, toSign, sig); err != nil {
		return si, fmt.Errorf("sign: %w: signature does not verify with the certificate's key: %w", ErrKey, err)
	}
	si.EncryptedDigest = sig
	return si, nil
}

func authenticatedAttributes(p signParams) ([]byte, error) {
	ct, _ := asn1.Marshal(p.contentType)
	md, _ := asn1.Marshal(p.contentDigest)
	attrs := []attribute{
		{Type: oidContentType, Values: []asn1.RawValue{{FullBytes: ct}}},
		{Type: oidMessageDigest, Values: []asn1.RawValue{{FullBytes: md}}},
	}
	if p.opus {
		attrs = append(attrs, attribute{Type: oidSpcSpOpusInfo, Values: []asn1.RawValue{{FullBytes: []byte{0x30, 0}}}})
	}
	if !p.signingTime.IsZero() {
		st, err := asn1.Marshal(p.signingTime.UTC())
		if err != nil {
			return nil, fmt.Errorf("sign: encode signing time: %w", err)
		}
		attrs = append(attrs, attribute{Type: oidSigningTime, Values: []asn1.RawValue{{FullBytes: st}}})
	}
	var enc [][]byte
	for _, a := range attrs {
		b, err := asn1.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("sign: encode attribute %v: %w", a.Type, err)
		}
		enc = append(enc, b)
	}
	return setOf(enc), nil
}

// checkKey accepts RSA keys of 2048, 3072 or 4096 bits whose public half is
// the certificate's.
func checkKey(key crypto.Signer, cert *x509.Certificate) error {
	if key == nil || cert == nil {
		return fmt.Errorf("%w: no key or certificate", ErrKey)
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: %T is not an RSA key (UEFI verifies RSA only)", ErrKey, key.Public())
	}
	switch pub.N.BitLen() {
	case 2048, 3072, 4096:
	default:
		return fmt.Errorf("%w: RSA key of %d bits; want 2048, 3072 or 4096", ErrKey, pub.N.BitLen())
	}
	if !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: key does not match certificate %q", ErrKey, cert.Subject)
	}
	return nil
}
