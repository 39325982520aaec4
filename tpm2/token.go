package tpm2

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// TokenType is the LUKS2 token type systemd-cryptenroll writes.
const TokenType = "systemd-tpm2"

// Token is the "systemd-tpm2" LUKS2 token JSON, field for field as systemd
// 252 writes it (src/cryptenroll/cryptenroll-tpm2.c, tpm2-util.c).
type Token struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Blob       string   `json:"tpm2-blob"`                  // base64(TPM2B_PRIVATE || TPM2B_PUBLIC)
	PCRs       []int    `json:"tpm2-pcrs"`                  // PCRs bound by value
	PCRBank    string   `json:"tpm2-pcr-bank"`              // "sha256" or "sha1"
	PrimaryAlg string   `json:"tpm2-primary-alg,omitempty"` // "ecc" or "rsa"; absent with tpm2_srk
	PolicyHash string   `json:"tpm2-policy-hash"`           // hex
	PIN        bool     `json:"tpm2-pin"`
	// Signed policy (systemd 252 spells these with underscores).
	PubKeyPCRs []int  `json:"tpm2_pubkey_pcrs,omitempty"`
	PubKey     string `json:"tpm2_pubkey,omitempty"` // base64 of the PEM
	SRK        string `json:"tpm2_srk,omitempty"`    // base64 of the SRK's serialized ESYS_TR (systemd 254+)
	// InitOS extensions; systemd ignores keys it does not know (its token
	// plugin validates only its own fields). See docs/tpm2.md.
	PrimaryName string            `json:"initos-tpm2-primary-name,omitempty"` // hex TPM name of the storage primary key
	PCRValues   map[string]string `json:"initos-tpm2-pcr-values,omitempty"`   // PCR -> hex value the policy binds it to
	Literal     []int             `json:"initos-tpm2-pcr-literal,omitempty"`  // PCRs bound to a literal value, not the value at enrollment
}

// NewToken returns the token for s protecting the given LUKS2 keyslot;
// keyslot -1 leaves the list empty (a sealed file outside LUKS2).
func NewToken(s *Sealed, keyslot int) *Token {
	tok := &Token{
		Type:       TokenType,
		Keyslots:   []string{},
		Blob:       base64.StdEncoding.EncodeToString(s.Blob()),
		PCRs:       slices.Clone(s.PCRs),
		PCRBank:    BankName(s.Bank),
		PrimaryAlg: PrimaryAlgName(s.PrimaryAlg),
		PolicyHash: hex.EncodeToString(s.PolicyHash),
		PIN:        s.PIN,
	}
	if keyslot >= 0 {
		tok.Keyslots = []string{strconv.Itoa(keyslot)}
	}
	if tok.PCRs == nil {
		tok.PCRs = []int{}
	}
	if s.PublicKey != nil {
		tok.PubKey = base64.StdEncoding.EncodeToString(s.PublicKey)
		tok.PubKeyPCRs = slices.Clone(s.PublicKeyPCRs)
	}
	tok.PrimaryName = hex.EncodeToString(s.PrimaryName)
	if s.SRK != nil {
		tok.SRK, tok.PrimaryAlg = base64.StdEncoding.EncodeToString(s.SRK.Marshal()), ""
	}
	if len(s.PCRValues) > 0 {
		tok.PCRValues = map[string]string{}
		for p, v := range s.PCRValues {
			tok.PCRValues[strconv.Itoa(p)] = hex.EncodeToString(v)
		}
	}
	tok.Literal = slices.Clone(s.Literal)
	return tok
}

// Marshal encodes the token as JSON.
func (tok *Token) Marshal() ([]byte, error) { return json.Marshal(tok) }

// ParseToken parses and checks a systemd-tpm2 token. Absent optional
// fields take systemd 252's defaults: bank sha256, primary ecc, no PIN.
func ParseToken(data []byte) (*Token, error) {
	var tok Token
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&tok); err != nil {
		return nil, fmt.Errorf("parse systemd-tpm2 token: %w", err)
	}
	if d.More() {
		return nil, errors.New("parse systemd-tpm2 token: trailing data after the JSON object")
	}
	if tok.PCRBank == "" {
		tok.PCRBank = "sha256"
	}
	if tok.PrimaryAlg == "" && tok.SRK == "" {
		tok.PrimaryAlg = "ecc"
	}
	if _, err := tok.Sealed(); err != nil {
		return nil, err
	}
	return &tok, nil
}

// Keyslot returns the first keyslot the token protects.
func (tok *Token) Keyslot() (int, error) {
	if len(tok.Keyslots) == 0 {
		return 0, errors.New("systemd-tpm2 token: no keyslots")
	}
	n, err := strconv.Atoi(tok.Keyslots[0])
	if err != nil || n < 0 || n > 31 {
		return 0, fmt.Errorf("systemd-tpm2 token: keyslot %q is not 0..31", tok.Keyslots[0])
	}
	return n, nil
}

// Sealed decodes and checks the token's fields into a Sealed object.
func (tok *Token) Sealed() (*Sealed, error) {
	s, err := tok.sealed()
	if err != nil {
		return nil, fmt.Errorf("parse systemd-tpm2 token: %w", err)
	}
	return s, nil
}

func (tok *Token) sealed() (*Sealed, error) {
	if tok.Type != TokenType {
		return nil, fmt.Errorf("type %q, want %q", tok.Type, TokenType)
	}
	for _, k := range tok.Keyslots {
		if n, err := strconv.Atoi(k); err != nil || n < 0 || n > 31 {
			return nil, fmt.Errorf("keyslot %q is not 0..31", k)
		}
	}
	s := &Sealed{PIN: tok.PIN, PCRs: slices.Clone(tok.PCRs), PublicKeyPCRs: slices.Clone(tok.PubKeyPCRs)}
	if tok.PCRs == nil {
		return nil, errors.New("tpm2-pcrs missing")
	}
	var err error
	if s.Bank, err = ParseBank(tok.PCRBank); err != nil {
		return nil, fmt.Errorf("tpm2-pcr-bank: %w", err)
	}
	if err := tok.decodeParent(s); err != nil {
		return nil, err
	}
	if err := checkPCRs(s.PCRs); err != nil {
		return nil, fmt.Errorf("tpm2-pcrs: %w", err)
	}
	if err := checkPCRs(s.PublicKeyPCRs); err != nil {
		return nil, fmt.Errorf("tpm2_pubkey_pcrs: %w", err)
	}
	if err := tok.decodeBinary(s); err != nil {
		return nil, err
	}
	if err := tok.decodeExtensions(s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeExtensions decodes and checks the initos-* fields.
func (tok *Token) decodeExtensions(s *Sealed) error {
	var err error
	if s.PrimaryName, err = hex.DecodeString(tok.PrimaryName); err != nil {
		return fmt.Errorf("initos-tpm2-primary-name is not hex: %w", err)
	}
	if n := len(s.PrimaryName); n != 0 && n != 2+32 {
		return fmt.Errorf("initos-tpm2-primary-name is %d bytes, want 34 (SHA-256 name)", n)
	}
	if len(s.PrimaryName) == 0 {
		s.PrimaryName = nil
	}
	if len(tok.PCRValues) > 0 {
		s.PCRValues = map[int][]byte{}
	}
	for k, v := range tok.PCRValues {
		p, err := strconv.Atoi(k)
		if err != nil || !slices.Contains(s.PCRs, p) {
			return fmt.Errorf("initos-tpm2-pcr-values: key %q is not one of the bound PCRs %s", k, FormatPCRs(s.PCRs))
		}
		if s.PCRValues[p], err = parsePCRValue(s.Bank, v); err != nil {
			return fmt.Errorf("initos-tpm2-pcr-values: PCR %d: %w", p, err)
		}
	}
	for _, p := range tok.Literal {
		if _, ok := s.PCRValues[p]; !ok {
			return fmt.Errorf("initos-tpm2-pcr-literal: PCR %d has no value in initos-tpm2-pcr-values", p)
		}
	}
	s.Literal = slices.Clone(tok.Literal)
	return nil
}

func (tok *Token) decodeBinary(s *Sealed) error {
	blob, err := base64.StdEncoding.DecodeString(tok.Blob)
	if err != nil {
		return fmt.Errorf("tpm2-blob is not base64: %w", err)
	}
	if err := s.SetBlob(blob); err != nil {
		return fmt.Errorf("tpm2-blob: %w", err)
	}
	if s.PolicyHash, err = hex.DecodeString(tok.PolicyHash); err != nil {
		return fmt.Errorf("tpm2-policy-hash is not hex: %w", err)
	}
	if n := len(s.PolicyHash); n != 0 && n != 32 {
		return fmt.Errorf("tpm2-policy-hash is %d bytes, want 32 (SHA-256)", n)
	}
	if tok.PubKey == "" {
		if len(s.PublicKeyPCRs) > 0 {
			return errors.New("tpm2_pubkey_pcrs given without tpm2_pubkey")
		}
		s.PublicKeyPCRs = nil
		return nil
	}
	if s.PublicKey, err = base64.StdEncoding.DecodeString(tok.PubKey); err != nil {
		return fmt.Errorf("tpm2_pubkey is not base64: %w", err)
	}
	if _, err := ParsePublicKeyPEM(s.PublicKey); err != nil {
		return fmt.Errorf("tpm2_pubkey: %w", err)
	}
	return nil
}

// decodeParent decodes what names the key the object was sealed under:
// "tpm2_srk" (systemd 254+) or "tpm2-primary-alg" (systemd 252's
// transient primary; absent means ecc).
func (tok *Token) decodeParent(s *Sealed) error {
	if tok.SRK != "" {
		b, err := base64.StdEncoding.DecodeString(tok.SRK)
		if err != nil {
			return fmt.Errorf("tpm2_srk is not base64: %w", err)
		}
		if s.SRK, err = ParseSRK(b); err != nil {
			return fmt.Errorf("tpm2_srk: %w", err)
		}
		s.PrimaryAlg = s.SRK.Public.Type
		return nil
	}
	alg := tok.PrimaryAlg
	if alg == "" {
		alg = "ecc"
	}
	var err error
	if s.PrimaryAlg, err = ParsePrimaryAlg(alg); err != nil {
		return fmt.Errorf("tpm2-primary-alg: %w", err)
	}
	return nil
}
