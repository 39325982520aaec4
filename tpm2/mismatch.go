package tpm2

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
)

// PCRMismatch is one bound PCR whose current value differs from the value
// the key was sealed to.
type PCRMismatch struct {
	PCR      int
	Expected []byte // the sealed-to value
	Actual   []byte // the TPM's current value
}

// PolicyError is a PCR policy mismatch, with the PCRs that caused it when
// they can be known. errors.Is(err, ErrPolicyMismatch) holds.
//
// Which PCR differs is known when the token records the values the policy
// was computed from (tokens InitOS writes do, checked against the sealed
// policy digest before they are believed), or when setting one PCR, or
// all non-zero ones, back to all-zero reproduces the sealed digest (PCR 15
// after a volume was opened: the usual case with systemd's tokens).
type PolicyError struct {
	Bank       Bank
	PCRs       []int          // the PCRs bound by value
	Current    map[int][]byte // their values now (nil if they could not be read)
	Mismatches []PCRMismatch  // the PCRs known to differ; nil when unknown
	Session    []byte         // the policy digest the TPM computed
	Sealed     []byte         // the policy digest the key was sealed with
}

// Is makes errors.Is(err, ErrPolicyMismatch) true.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicyMismatch }

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("PCR policy mismatch: ")
	if len(e.Mismatches) > 0 {
		for i, m := range e.Mismatches {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "PCR %d is %x, expected %x", m.PCR, m.Actual, m.Expected)
		}
		fmt.Fprintf(&b, " (bank %s)", BankName(e.Bank))
		return b.String()
	}
	fmt.Fprintf(&b, "PCRs %s of bank %s differ from the values the key was sealed to "+
		"(which one is unknown: the token does not record them)", FormatPCRs(e.PCRs), BankName(e.Bank))
	if e.Current != nil {
		b.WriteString("; now")
		for _, p := range e.PCRs {
			fmt.Fprintf(&b, " %d=%x", p, e.Current[p])
		}
	}
	fmt.Fprintf(&b, "; session policy %x, sealed policy %x", e.Session, e.Sealed)
	return b.String()
}

// policyError builds the PolicyError for a session digest that differs
// from the sealed one, reading the bound PCRs to say which differ.
func (s *Sealed) policyError(t transport.TPM, session []byte) error {
	e := &PolicyError{Bank: s.Bank, PCRs: s.PCRs, Session: session, Sealed: s.PolicyHash}
	cur, err := ReadPCRs(t, s.Bank, s.PCRs)
	if err != nil {
		return fmt.Errorf("%w (reading the PCRs to say which failed: %v)", e, err)
	}
	e.Current = cur
	e.Mismatches = s.diagnose(cur)
	return e
}

// diagnose names the PCRs whose values differ from the sealed ones:
// exactly when the recorded values reproduce the sealed policy, else by
// trying all-zero for the non-zero PCRs. nil means unknown.
func (s *Sealed) diagnose(cur map[int][]byte) []PCRMismatch {
	if s.policyMatches(s.PCRValues) {
		return differing(s.PCRs, s.PCRValues, cur)
	}
	var nonzero []int
	for _, p := range s.PCRs {
		if !isZero(cur[p]) {
			nonzero = append(nonzero, p)
		}
	}
	for _, try := range append(singles(nonzero), nonzero) {
		guess := withZero(cur, try)
		if len(try) > 0 && s.policyMatches(guess) {
			return differing(s.PCRs, guess, cur)
		}
	}
	return nil
}

// policyMatches reports whether the policy computed with values equals
// the sealed digest.
func (s *Sealed) policyMatches(values map[int][]byte) bool {
	if len(values) == 0 || len(s.PolicyHash) == 0 {
		return false
	}
	spec := policySpec{bank: s.Bank, pcrs: s.PCRs, values: values, pin: s.PIN}
	if s.PublicKey != nil && len(s.PublicKeyPCRs) > 0 {
		pub, err := ParsePublicKeyPEM(s.PublicKey)
		if err != nil {
			return false
		}
		if spec.pubKeyName, err = PublicKeyName(pub); err != nil {
			return false
		}
	}
	d, err := spec.digest()
	return err == nil && bytes.Equal(d, s.PolicyHash)
}

func differing(pcrs []int, want, cur map[int][]byte) []PCRMismatch {
	var ms []PCRMismatch
	for _, p := range pcrs {
		if !bytes.Equal(want[p], cur[p]) {
			ms = append(ms, PCRMismatch{PCR: p, Expected: want[p], Actual: cur[p]})
		}
	}
	return ms
}

func singles(pcrs []int) [][]int {
	out := make([][]int, len(pcrs))
	for i, p := range pcrs {
		out[i] = []int{p}
	}
	return out
}

// withZero returns cur with the PCRs in zero set to all-zero.
func withZero(cur map[int][]byte, zero []int) map[int][]byte {
	m := make(map[int][]byte, len(cur))
	for p, v := range cur {
		m[p] = v
	}
	for _, p := range zero {
		m[p] = make([]byte, len(cur[p]))
	}
	return m
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
