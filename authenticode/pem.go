package authenticode

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// ParsePrivateKey decodes a PEM private key: PKCS #1 ("RSA PRIVATE KEY")
// or unencrypted PKCS #8 ("PRIVATE KEY").
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("parse private key: no PEM block found")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse private key: PKCS #1: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse private key: PKCS #8: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("parse private key: %T cannot sign", k)
		}
		return s, nil
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("parse private key: encrypted keys are not supported; decrypt it first (openssl pkey)")
	}
	return nil, fmt.Errorf("parse private key: unexpected PEM block %q", block.Type)
}

// ParseCertificates decodes one or more certificates, PEM ("CERTIFICATE"
// blocks) or a single DER certificate.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: neither PEM nor DER: %w", err)
	}
	return []*x509.Certificate{c}, nil
}
