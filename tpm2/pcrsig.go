package tpm2

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

// PCRSignature is the JSON systemd-measure writes and systemd-stub puts in
// a UKI's .pcrsig section: for each bank name, a list of signed policies.
type PCRSignature map[string][]PCRSignatureEntry

// PCRSignatureEntry is one signed PolicyPCR digest.
type PCRSignatureEntry struct {
	PCRs []int  `json:"pcrs"` // covered PCRs
	PKFP string `json:"pkfp"` // hex Fingerprint of the signing key
	Pol  string `json:"pol"`  // hex PolicyPCR digest (the approved policy)
	Sig  string `json:"sig"`  // base64 RSASSA-PKCS1-v1_5 SHA-256 signature over pol
	// RollbackIndex and SecurityVersion are set together on a policy
	// that also carries a security version (SignPCRPolicyEntryRollback):
	// pol is then PolicyPCR followed by PolicyNV on that NV index.
	RollbackIndex   string  `json:"initos-rollback-index,omitempty"`
	SecurityVersion *uint64 `json:"initos-security-version,omitempty"`
}

// ParsePCRSignature parses .pcrsig JSON, checking field encodings.
func ParsePCRSignature(data []byte) (PCRSignature, error) {
	var s PCRSignature
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse PCR signature JSON: %w", err)
	}
	for bank, entries := range s {
		for i, e := range entries {
			if err := e.check(); err != nil {
				return nil, fmt.Errorf("parse PCR signature JSON: bank %q entry %d: %w", bank, i, err)
			}
		}
	}
	return s, nil
}

func (e PCRSignatureEntry) check() error {
	if err := checkPCRs(e.PCRs); err != nil {
		return fmt.Errorf("pcrs: %w", err)
	}
	if b, err := hex.DecodeString(e.PKFP); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("pkfp %q is not a hex SHA-256 digest", e.PKFP)
	}
	if b, err := hex.DecodeString(e.Pol); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("pol %q is not a hex SHA-256 digest", e.Pol)
	}
	if _, err := base64.StdEncoding.DecodeString(e.Sig); err != nil {
		return fmt.Errorf("sig is not base64: %w", err)
	}
	_, _, err := e.rollback()
	return err
}

// SignPCRPolicy signs the PolicyPCR digest for pcrs of bank having values,
// as systemd-measure sign does, and returns the .pcrsig JSON. The signer
// must hold an RSA key (systemd 252 verifies RSASSA only).
func SignPCRPolicy(signer crypto.Signer, bank Bank, pcrs []int, values map[int][]byte) ([]byte, error) {
	e, err := SignPCRPolicyEntry(signer, bank, pcrs, values)
	if err != nil {
		return nil, err
	}
	return json.Marshal(PCRSignature{BankName(bank): {e}})
}

// SignPCRPolicyEntry is SignPCRPolicy returning the entry, to merge several.
func SignPCRPolicyEntry(signer crypto.Signer, bank Bank, pcrs []int, values map[int][]byte) (PCRSignatureEntry, error) {
	pol, err := PolicyPCRDigest(bank, pcrs, values)
	if err != nil {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: %w", err)
	}
	return signEntry(signer, pcrs, pol)
}

// signEntry signs the approved policy pol for pcrs.
func signEntry(signer crypto.Signer, pcrs []int, pol []byte) (PCRSignatureEntry, error) {
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: key is %T, want RSA (systemd 252 verifies RSASSA only)", signer.Public())
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: %w", err)
	}
	d := sha256.Sum256(pol)
	sig, err := signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: %w", err)
	}
	return PCRSignatureEntry{
		PCRs: slices.Sorted(slices.Values(pcrs)),
		PKFP: hex.EncodeToString(fp),
		Pol:  hex.EncodeToString(pol),
		Sig:  base64.StdEncoding.EncodeToString(sig),
	}, nil
}

// find returns the signature for bank, pcrs, key fingerprint fp and
// approved policy pol, matching as systemd 252's find_signature.
func (s PCRSignature) find(bank Bank, pcrs []int, fp, pol []byte) ([]byte, error) {
	if _, ok := s[BankName(bank)]; !ok {
		return nil, fmt.Errorf("%w: no signatures for bank %s", ErrNoSignature, BankName(bank))
	}
	for _, e := range s.matching(bank, pcrs, fp) {
		epol, err := hex.DecodeString(e.Pol)
		if err != nil || !bytes.Equal(epol, pol) {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(e.Sig)
		if err != nil {
			return nil, fmt.Errorf("decode PCR signature: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("%w (bank %s, PCRs %s, policy %x)", ErrNoSignature, BankName(bank), FormatPCRs(pcrs), pol)
}

// matching returns the entries of bank over exactly pcrs signed by the
// key with fingerprint fp.
func (s PCRSignature) matching(bank Bank, pcrs []int, fp []byte) []PCRSignatureEntry {
	want := slices.Sorted(slices.Values(pcrs))
	var out []PCRSignatureEntry
	for _, e := range s[BankName(bank)] {
		got := slices.Sorted(slices.Values(e.PCRs))
		efp, err := hex.DecodeString(e.PKFP)
		if err == nil && slices.Equal(slices.Compact(got), want) && bytes.Equal(efp, fp) {
			out = append(out, e)
		}
	}
	return out
}

// Fingerprint is the key fingerprint systemd uses in "pkfp": SHA-256 of
// OpenSSL's i2d_PublicKey encoding, which for RSA is the PKCS #1
// RSAPublicKey DER (not the SubjectPublicKeyInfo: checked against
// `systemd-measure sign` 252 in initos/uki's tests).
func Fingerprint(pub crypto.PublicKey) ([]byte, error) {
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("fingerprint public key: %T, want RSA", pub)
	}
	d := sha256.Sum256(x509.MarshalPKCS1PublicKey(rk))
	return d[:], nil
}

// EncodePublicKeyPEM encodes pub as a PEM "PUBLIC KEY" (what
// --tpm2-public-key files and .pcrpkey sections hold).
func EncodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKeyPEM parses a PEM "PUBLIC KEY" holding an RSA key.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("parse public key: no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("parse public key: %T, want RSA (systemd 252 signed policies are RSA only)", k)
	}
	if n := rk.N.BitLen(); n < 2048 || n > 4096 {
		return nil, fmt.Errorf("parse public key: RSA modulus of %d bits, want 2048..4096", n)
	}
	return rk, nil
}

// PublicKeyTemplate is the TPM public area systemd 252 loads a policy
// signing key as (openssl_pubkey_to_tpm2_pubkey): RSA, SHA-256 name,
// decrypt|sign|userWithAuth, null symmetric and scheme, the exponent
// spelled out. Its name enters the policy, so it must match exactly.
func PublicKeyTemplate(pub *rsa.PublicKey) (tpm2.TPMTPublic, error) {
	n := pub.N.Bytes()
	if len(n) > 512 || pub.E <= 0 || pub.E > 1<<32-1 {
		return tpm2.TPMTPublic{}, fmt.Errorf("public key template: RSA key with %d-byte modulus and exponent %d unsupported", len(n), pub.E)
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgRSA,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{Decrypt: true, SignEncrypt: true, UserWithAuth: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
			KeyBits:   tpm2.TPMKeyBits(len(n) * 8),
			Exponent:  uint32(pub.E),
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: n}),
	}, nil
}

// PublicKeyName returns the TPM name of pub loaded with PublicKeyTemplate:
// the SHA-256 algorithm ID then SHA-256 of the marshalled public area.
func PublicKeyName(pub *rsa.PublicKey) ([]byte, error) {
	tmpl, err := PublicKeyTemplate(pub)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(tpm2.Marshal(tmpl))
	return append([]byte{0x00, 0x0b}, d[:]...), nil
}
