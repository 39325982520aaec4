package enroll

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"maps"
	"slices"

	"initos/efivar"
	"initos/tpm2"
)

// VolumePCR is the PCR MeasureVolume extends and the default policy binds
// to all-zero: systemd's "system-identity" PCR, where systemd-cryptsetup
// measures volume keys.
const VolumePCR = 15

// Policy says what a TPM token's secret is sealed to. The zero value binds
// PCR 7 (Secure Boot state and keys) by its current value, as
// systemd-cryptenroll does by default.
type Policy struct {
	// Bank is the PCR bank; zero means SHA-256.
	Bank tpm2.Bank
	// PCRs are bound by value. nil means {7}; empty binds none.
	PCRs []int
	// PCRValues gives literal values for some of PCRs (the others are
	// bound to their current value), e.g. {15: 32 zero bytes}.
	PCRValues map[int][]byte
	// PublicKey, if set, adds a signed PCR policy over PublicKeyPCRs
	// (default {11}): any PCR value signed by the private key unseals,
	// so a new UKI signed by the owner needs no reseal.
	PublicKey     *rsa.PublicKey
	PublicKeyPCRs []int
	// PIN, if non-nil, is required at unlock as well.
	PIN []byte
	// SRK seals under the TPM's persistent storage root key (0x81000001,
	// created if missing) as systemd 254+ does, instead of systemd 252's
	// transient primary key; systemd 252 cannot open such a token.
	SRK bool
}

// DefaultPolicy is what the installer enrolls: PCR 7 by its current value,
// PCR 15 all-zero (no volume opened yet in this boot) and, when pub is
// set, PCR 11 signed by pub (the UKI and its boot phase).
func DefaultPolicy(pub *rsa.PublicKey) Policy {
	p := Policy{
		PCRs:      []int{7, VolumePCR},
		PCRValues: map[int][]byte{VolumePCR: make([]byte, 32)},
	}
	if pub != nil {
		p.PublicKey, p.PublicKeyPCRs = pub, []int{11}
	}
	return p
}

// BindsPCR7 reports whether p binds PCR 7 by value (the Secure Boot state).
func (p Policy) BindsPCR7() bool {
	return p.PCRs == nil || slices.Contains(p.PCRs, 7)
}

// sealOptions converts p into tpm2.SealOptions.
func (p Policy) sealOptions() tpm2.SealOptions {
	o := tpm2.SealOptions{
		Bank: p.Bank, PCRs: slices.Clone(p.PCRs), PCRValues: maps.Clone(p.PCRValues),
		PublicKey: p.PublicKey, PublicKeyPCRs: slices.Clone(p.PublicKeyPCRs), PIN: p.PIN, SRK: p.SRK,
	}
	return o
}

// policyOf rebuilds the policy a sealed token was enrolled with: the same
// bank, PCRs, signing key and PIN requirement, and the literal values it
// recorded (other PCRs take their current value again).
func policyOf(s *tpm2.Sealed, pin []byte) (Policy, error) {
	p := Policy{Bank: s.Bank, PCRs: slices.Clone(s.PCRs), PublicKeyPCRs: slices.Clone(s.PublicKeyPCRs), SRK: s.SRK != nil}
	for _, pcr := range s.Literal {
		if p.PCRValues == nil {
			p.PCRValues = map[int][]byte{}
		}
		p.PCRValues[pcr] = slices.Clone(s.PCRValues[pcr])
	}
	if s.PublicKey != nil {
		pub, err := tpm2.ParsePublicKeyPEM(s.PublicKey)
		if err != nil {
			return Policy{}, err
		}
		p.PublicKey = pub
	}
	if s.PIN && pin == nil {
		return Policy{}, fmt.Errorf("%w: the token requires a PIN and none was given", tpm2.ErrWrongPIN)
	}
	if s.PIN {
		p.PIN = pin
	}
	return p, nil
}

// Errors of CheckSecureBoot.
var (
	// ErrSecureBootOff: the firmware does not enforce Secure Boot.
	ErrSecureBootOff = errors.New("Secure Boot is off (SecureBoot=0): a policy bound to PCR 7 now would be satisfied by any boot chain")
	// ErrSetupMode: the firmware has no platform key; anyone can enroll keys.
	ErrSetupMode = errors.New("the firmware is in setup mode (SetupMode=1): anyone can enroll Secure Boot keys, so PCR 7 vouches for nothing")
)

// CheckSecureBoot returns an error wrapping ErrSecureBootOff or
// ErrSetupMode unless the firmware enforces Secure Boot with enrolled keys
// (SecureBoot=1, SetupMode=0, read from the EFI global variables). Callers
// refuse to enroll a policy that binds PCR 7 (Policy.BindsPCR7) when it
// fails, unless the user forces it.
func CheckSecureBoot(s efivar.Store) error {
	sb, err := efivar.GetUint8(s, "SecureBoot", efivar.GlobalVariable)
	if err != nil {
		return fmt.Errorf("check Secure Boot: %w", err)
	}
	setup, err := efivar.GetUint8(s, "SetupMode", efivar.GlobalVariable)
	if err != nil {
		return fmt.Errorf("check Secure Boot: %w", err)
	}
	switch {
	case setup == 1:
		return fmt.Errorf("check Secure Boot: %w", ErrSetupMode)
	case sb != 1:
		return fmt.Errorf("check Secure Boot: %w", ErrSecureBootOff)
	}
	return nil
}
