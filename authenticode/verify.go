package authenticode

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"initos/pecoff"
)

// Errors callers branch on.
var (
	// ErrNotSigned: the image has no certificate table or no PKCS #7 entry.
	ErrNotSigned = pecoff.ErrUnsigned
	// ErrDigestMismatch: the image was changed after it was signed.
	ErrDigestMismatch = errors.New("image digest does not match the signed digest")
	// ErrBadSignature: the signature does not verify with the signer's key.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrUntrusted: the signature is intact but no trusted certificate
	// vouches for its signer.
	ErrUntrusted = errors.New("signer is not trusted")
)

// Verify checks img's signatures and returns the first one that covers the
// image as it is and whose signer is one of trusted or was issued (directly
// or through embedded intermediates) by one of them: the rule UEFI applies
// with the certificates in db. The error of the last rejected signature is
// returned when none passes.
//
// Like firmware, it looks at each entry of the certificate table on its
// own: an entry that cannot be decoded is skipped (its error is returned
// only when no entry passes), and nested signatures do not count (EDK2
// verifies the outer SignerInfo of each entry only; use
// Signature.Verify on Signature.Nested to check them).
func Verify(img *pecoff.Image, trusted []*x509.Certificate) (*Signature, error) {
	entries, err := Entries(img)
	if err != nil {
		return nil, fmt.Errorf("verify image: %w", err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("verify image: %w", ErrNotSigned)
	}
	var last error
	for _, e := range entries {
		if e.Err != nil {
			last = fmt.Errorf("signature %d: %w", e.Index, e.Err)
			continue
		}
		if err := e.Signature.Verify(img, trusted); err != nil {
			last = fmt.Errorf("signature %d by %q: %w", e.Index, e.Signature.Signer.Subject, err)
			continue
		}
		return e.Signature, nil
	}
	return nil, fmt.Errorf("verify image: %w", last)
}

// Verify checks that s covers img as it is (CheckImage) and that trusted
// vouches for its signer: the signer is one of trusted, or was issued
// (directly or through the embedded certificates) by one of them.
func (s *Signature) Verify(img *pecoff.Image, trusted []*x509.Certificate) error {
	if err := s.CheckImage(img); err != nil {
		return err
	}
	return trustedBy(s.Signer, s.Certificates, trusted)
}

// CheckImage checks that s is intact and covers img as it is: the image
// digest matches the signed one, and the signer's key verifies the
// SignerInfo. It says nothing about whether the signer is trusted.
func (s *Signature) CheckImage(img *pecoff.Image) error {
	digest, err := Hash(img, s.DigestAlgorithm)
	if err != nil {
		return err
	}
	if !bytes.Equal(digest, s.Digest) {
		return fmt.Errorf("%w: image %x, signed %x", ErrDigestMismatch, digest, s.Digest)
	}
	return checkSignerInfo(s.parsed, s.spcContents)
}

// checkSignerInfo verifies the SignerInfo over content: through the
// authenticated attributes when present (contentType and messageDigest
// must match), else directly.
func checkSignerInfo(p *parsedSignedData, content []byte) error {
	si := &p.signer
	signer, err := p.signerCert()
	if err != nil {
		return err
	}
	h := si.digestAlg.New()
	h.Write(content)
	toVerify := h.Sum(nil)
	if si.attrs != nil {
		if err := checkAttributes(si, p.contentType, toVerify); err != nil {
			return err
		}
		h.Reset()
		h.Write(si.attrs)
		toVerify = h.Sum(nil)
	}
	pub, ok := signer.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signer key %T is not RSA", ErrBadSignature, signer.PublicKey)
	}
	if err := rsa.VerifyPKCS1v15(pub, si.digestAlg, toVerify, si.signature); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

func checkAttributes(si *parsedSignerInfo, contentType asn1.ObjectIdentifier, digest []byte) error {
	ctv, err := si.attr(oidContentType)
	if err != nil {
		return err
	}
	var ct asn1.ObjectIdentifier
	if err := unmarshalAll(ctv.FullBytes, &ct); err != nil || !ct.Equal(contentType) {
		return fmt.Errorf("%w: contentType attribute %v does not match content %v", ErrBadSignature, ct, contentType)
	}
	mdv, err := si.attr(oidMessageDigest)
	if err != nil {
		return err
	}
	var md []byte
	if err := unmarshalAll(mdv.FullBytes, &md); err != nil || !bytes.Equal(md, digest) {
		return fmt.Errorf("%w: messageDigest attribute does not match the content", ErrBadSignature)
	}
	return nil
}

// trustedBy walks from signer up through the embedded certificates until
// it meets a trusted certificate (itself, or its issuer by signature).
func trustedBy(signer *x509.Certificate, pool, trusted []*x509.Certificate) error {
	cur := signer
	for range 8 {
		for _, t := range trusted {
			if bytes.Equal(cur.Raw, t.Raw) || issuedBy(cur, t) {
				return nil
			}
		}
		next := (*x509.Certificate)(nil)
		for _, c := range pool {
			if !bytes.Equal(c.Raw, cur.Raw) && issuedBy(cur, c) {
				next = c
				break
			}
		}
		if next == nil {
			break
		}
		cur = next
	}
	return fmt.Errorf("%w: no trusted certificate issued %q", ErrUntrusted, signer.Subject)
}

func issuedBy(c, parent *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, parent.RawSubject) &&
		parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// VerifyDetached checks a PKCS #7 SignedData (bare or in a ContentInfo)
// over data, as found in UEFI authenticated variables, and returns the
// signer when trusted vouches for it.
func VerifyDetached(sd, data []byte, trusted []*x509.Certificate) (*x509.Certificate, error) {
	p, err := parseContentInfo(sd)
	if err != nil {
		return nil, fmt.Errorf("verify detached signature: %w", err)
	}
	if err := checkSignerInfo(p, data); err != nil {
		return nil, fmt.Errorf("verify detached signature: %w", err)
	}
	signer, _ := p.signerCert()
	if err := trustedBy(signer, p.certs, trusted); err != nil {
		return nil, fmt.Errorf("verify detached signature: %w", err)
	}
	return signer, nil
}
