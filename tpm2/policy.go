package tpm2

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
)

// PolicyPCRDigest computes, without a TPM, the policy digest a fresh
// SHA-256 policy session has after TPM2_PolicyPCR over pcrs of bank with
// the given values (TPM 2.0 Part 3, 23.7):
//
//  1. pcrDigest = SHA-256(value[p0] || value[p1] || ...), ascending index;
//  2. policy = SHA-256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION || pcrDigest).
//
// This is the "pol" of a .pcrsig entry, and the approved policy a signer
// signs.
func PolicyPCRDigest(bank Bank, pcrs []int, values map[int][]byte) ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if err := policyPCR(calc, bank, pcrs, values); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
}

func policyPCR(calc *tpm2.PolicyCalculator, bank Bank, pcrs []int, values map[int][]byte) error {
	if err := checkPCRs(pcrs); err != nil {
		return fmt.Errorf("compute PolicyPCR: %w", err)
	}
	h, err := bankHash(bank)
	if err != nil {
		return fmt.Errorf("compute PolicyPCR: %w", err)
	}
	sorted := slices.Sorted(slices.Values(pcrs))
	d := sha256.New()
	for _, p := range sorted {
		v, ok := values[p]
		if !ok {
			return fmt.Errorf("compute PolicyPCR: no value for PCR %d", p)
		}
		if len(v) != h.Size() {
			return fmt.Errorf("compute PolicyPCR: PCR %d value is %d bytes, want %d for bank %s", p, len(v), h.Size(), BankName(bank))
		}
		d.Write(v)
	}
	return tpm2.PolicyPCR{
		PcrDigest: tpm2.TPM2BDigest{Buffer: d.Sum(nil)},
		Pcrs:      selection(bank, sorted),
	}.Update(calc)
}

// policySpec is everything that shapes a sealed object's policy.
type policySpec struct {
	bank       Bank
	pcrs       []int          // hash-bound PCRs
	values     map[int][]byte // their values
	pubKeyName []byte         // TPM name of the signing key; nil: no PolicyAuthorize
	pin        bool
}

// digest computes the policy in systemd 252's order: PolicyAuthorize (if a
// public key is given; it resets the digest, so the signed PolicyPCR before
// it does not appear), PolicyPCR (if PCRs are bound), PolicyAuthValue (if
// a PIN is used).
func (p policySpec) digest() ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	if p.pubKeyName != nil {
		err := tpm2.PolicyAuthorize{KeySign: tpm2.TPM2BName{Buffer: p.pubKeyName}}.Update(calc)
		if err != nil {
			return nil, fmt.Errorf("compute PolicyAuthorize: %w", err)
		}
	}
	if len(p.pcrs) > 0 {
		if err := policyPCR(calc, p.bank, p.pcrs, p.values); err != nil {
			return nil, err
		}
	}
	if p.pin {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, fmt.Errorf("compute PolicyAuthValue: %w", err)
		}
	}
	return calc.Hash().Digest, nil
}

// hashPIN turns a PIN into the object's auth value as systemd 252 does:
// SHA-256 of the PIN bytes. Trailing zero bytes are dropped, as the TPM
// does when it stores an auth value (Part 1, 19.6.5), so our session HMAC
// and parameter-encryption keys match the TPM's.
func hashPIN(pin []byte) []byte {
	h := sha256.Sum256(pin)
	b := h[:]
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

func sha256Sum(b []byte) []byte { d := sha256.Sum256(b); return d[:] }
