package uki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"initos/pecoff"
	"initos/tpm2"
)

// PCRSigning says how Build signs the PCR 11 policy of a UKI. Key is
// required; the other fields' zero values mean the defaults.
type PCRSigning struct {
	// Key signs the policies: an RSA 2048..4096 key (systemd 252 verifies
	// RSASSA only).
	Key crypto.Signer
	// PublicKey is the PEM "PUBLIC KEY" put in .pcrpkey, byte for byte,
	// and must hold Key's public key. nil: derived from Key.
	PublicKey []byte
	// Banks are the PCR banks to sign for. nil: {tpm2.SHA256}, the only
	// one supported.
	Banks []tpm2.Bank
	// Phases are the phase paths to sign PCR 11 for, each a list of
	// systemd-pcrphase words extended after systemd-stub's measurements
	// (e.g. {"enter-initrd", "leave-initrd"}); the empty path is the value
	// at boot, before any phase. nil: InitrdPhases, what the InitOS initrd
	// (initos-init) unseals against, and only inside the initrd.
	Phases [][]string
}

// InitrdPhases is the default of PCRSigning.Phases: only "enter-initrd",
// which initos-init measures first (as systemd-pcrphase-initrd does) and
// which "leave-initrd", measured before switch_root, ends. A key sealed to
// this signed policy unseals in the initrd and nowhere else (ukify's
// advice for the initrd key: --phases=enter-initrd).
var InitrdPhases = [][]string{{"enter-initrd"}}

// SystemdPhases are the phase paths systemd-measure 252 signs when given
// no --phase, for systems that run systemd-pcrphase.
var SystemdPhases = [][]string{
	{"enter-initrd"},
	{"enter-initrd", "leave-initrd"},
	{"enter-initrd", "leave-initrd", "sysinit"},
	{"enter-initrd", "leave-initrd", "sysinit", "ready"},
}

// Build builds a UKI on stub from u, as pecoff.BuildUKI, and with pcr set
// embeds the PEM public key in .pcrpkey and the signed PCR 11 policies in
// .pcrsig (see the package documentation for the steps). u.PCRSig must then
// be empty, and u.PCRPKey empty or equal to the public key used.
func Build(stub []byte, u pecoff.UKI, pcr *PCRSigning) (*pecoff.Image, error) {
	if pcr == nil {
		return pecoff.BuildUKI(stub, u)
	}
	pub, err := pcr.publicKeyPEM(u.PCRPKey)
	if err != nil {
		return nil, fmt.Errorf("build signed UKI: %w", err)
	}
	if len(u.PCRSig) != 0 {
		return nil, fmt.Errorf("build signed UKI: a .pcrsig is given and a PCR key too: use one or the other")
	}
	u.PCRPKey = pub                      // 1.
	img, err := pecoff.BuildUKI(stub, u) // 2.
	if err != nil {
		return nil, fmt.Errorf("build signed UKI: %w", err)
	}
	if u.PCRSig, err = SignPCR11(bytes.NewReader(img.Bytes()), *pcr); err != nil { // 3., 4.
		return nil, fmt.Errorf("build signed UKI: %w", err)
	}
	want, err := tpm2.PredictPCR11(bytes.NewReader(img.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("build signed UKI: %w", err)
	}
	if img, err = pecoff.BuildUKI(stub, u); err != nil { // 5.
		return nil, fmt.Errorf("build signed UKI: %w", err)
	}
	got, err := tpm2.PredictPCR11(bytes.NewReader(img.Bytes()))
	if err != nil || !bytes.Equal(got, want) {
		return nil, fmt.Errorf("build signed UKI: adding .pcrsig changed PCR 11 from %x to %x (%v)", want, got, err)
	}
	return img, nil
}

// SignPCR11 predicts PCR 11 for the UKI uki (its .pcrpkey already in
// place) for each phase path of s and returns the .pcrsig JSON signing
// them, one entry per bank and phase path, in the order given.
func SignPCR11(uki io.ReaderAt, s PCRSigning) ([]byte, error) {
	if s.Key == nil {
		return nil, fmt.Errorf("sign PCR 11: no private key")
	}
	banks, err := s.banks()
	if err != nil {
		return nil, fmt.Errorf("sign PCR 11: %w", err)
	}
	phases := s.Phases
	if phases == nil {
		phases = InitrdPhases
	}
	sig := tpm2.PCRSignature{}
	for _, path := range phases {
		v, err := tpm2.PredictPCR11(uki, path...)
		if err != nil {
			return nil, fmt.Errorf("sign PCR 11: %w", err)
		}
		for _, bank := range banks {
			e, err := tpm2.SignPCRPolicyEntry(s.Key, bank, []int{11}, map[int][]byte{11: v})
			if err != nil {
				return nil, fmt.Errorf("sign PCR 11 for phase %q: %w", strings.Join(path, ":"), err)
			}
			sig[tpm2.BankName(bank)] = append(sig[tpm2.BankName(bank)], e)
		}
	}
	return json.Marshal(sig)
}

func (s PCRSigning) banks() ([]tpm2.Bank, error) {
	if s.Banks == nil {
		return []tpm2.Bank{tpm2.SHA256}, nil
	}
	if len(s.Banks) == 0 {
		return nil, fmt.Errorf("no PCR bank selected")
	}
	for _, b := range s.Banks {
		if b != tpm2.SHA256 {
			return nil, fmt.Errorf("PCR bank %s unsupported: PCR 11 prediction and systemd 252's signed policies are sha256 only", tpm2.BankName(b))
		}
	}
	return s.Banks[:1], nil // duplicates of sha256 would only repeat entries
}

// publicKeyPEM returns the .pcrpkey contents: s.PublicKey, else the one
// already in the UKI, else Key's public key encoded; it must match Key.
func (s PCRSigning) publicKeyPEM(inUKI []byte) ([]byte, error) {
	if s.Key == nil {
		return nil, fmt.Errorf("no PCR private key")
	}
	priv, ok := s.Key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("PCR key is %T, want RSA (systemd 252 verifies RSASSA only)", s.Key.Public())
	}
	pemBytes := s.PublicKey
	if pemBytes == nil {
		pemBytes = inUKI
	} else if inUKI != nil && !bytes.Equal(inUKI, pemBytes) {
		return nil, fmt.Errorf("a .pcrpkey is given that differs from the PCR public key")
	}
	if pemBytes == nil {
		return tpm2.EncodePublicKeyPEM(priv)
	}
	pub, err := tpm2.ParsePublicKeyPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("PCR public key: %w", err)
	}
	if !pub.Equal(priv) {
		return nil, fmt.Errorf("PCR public key does not match the PCR private key")
	}
	return pemBytes, nil
}

// ParsePhases parses a list of phase paths as ukify's --phases takes it:
// paths separated by spaces or commas, words within a path by colons. The
// path ":" is the empty one (the value at boot, before any phase word).
func ParsePhases(s string) ([][]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		return nil, fmt.Errorf("parse phases %q: no phase path", s)
	}
	paths := make([][]string, 0, len(fields))
	for _, f := range fields {
		if f == ":" {
			paths = append(paths, []string{})
			continue
		}
		words := strings.Split(f, ":")
		for _, w := range words {
			if w == "" {
				return nil, fmt.Errorf("parse phases %q: empty word in phase path %q", s, f)
			}
		}
		paths = append(paths, words)
	}
	return paths, nil
}
