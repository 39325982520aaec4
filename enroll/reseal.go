package enroll

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
)

// ResealOptions configures Reseal.
type ResealOptions struct {
	// Policy for the new token. nil reuses the policy of the volume's first
	// systemd-tpm2 token: its bank, PCRs, signed-policy key and PIN
	// requirement, with the values of its literal PCRs (PCR 15 = 0) and
	// the current values of the other PCRs. Callers that hold the policy
	// in trusted storage (the signed initrd config) pass it here, so a
	// tampered header cannot choose it.
	Policy *Policy
	// PIN for a reused policy that requires one.
	PIN []byte
}

// Reseal re-enrolls the volume's TPM token against the TPM's current
// state, typically after a firmware or dbx update changed PCR 7 and the
// volume was opened with a recovery key (vk). It enrolls the new token
// first, then removes the old systemd-tpm2 tokens and their keyslots, so
// that a crash in between leaves an extra token, never none.
func Reseal(t transport.TPM, d luks2.Device, h *luks2.Header, vk *luks2.Secret, o ResealOptions) (Enrollment, error) {
	old, errs := Tokens(h)
	p, err := resealPolicy(old, errs, o)
	if err != nil {
		return Enrollment{}, fmt.Errorf("reseal: %w", err)
	}
	e, err := Enroll(t, d, h, vk, p)
	if err != nil {
		return Enrollment{}, fmt.Errorf("reseal: %w", err)
	}
	for _, tok := range old {
		if err := removeToken(d, h, tok); err != nil {
			return e, fmt.Errorf("reseal: new token %d enrolled, removing the old one: %w", e.Token, err)
		}
	}
	return e, nil
}

func resealPolicy(old []Token, errs []error, o ResealOptions) (Policy, error) {
	if o.Policy != nil {
		return *o.Policy, nil
	}
	if len(old) == 0 {
		return Policy{}, errors.Join(append([]error{fmt.Errorf("%w to take the policy from (pass one)", ErrNoToken)}, errs...)...)
	}
	return policyOf(old[0].Sealed, o.PIN)
}

// removeToken removes a token and then the keyslot it names, unless
// another token still names that keyslot.
func removeToken(d luks2.Device, h *luks2.Header, tok Token) error {
	if err := h.RemoveToken(d, tok.ID); err != nil {
		return err
	}
	_, others := h.Tokens()
	for _, t := range others {
		if t != nil && slices.Contains(t.Keyslots, strconv.Itoa(tok.Keyslot)) {
			return nil
		}
	}
	if _, ok := h.Meta.Keyslots[strconv.Itoa(tok.Keyslot)]; !ok {
		return nil
	}
	if err := h.KillSlot(d, tok.Keyslot); err != nil {
		return fmt.Errorf("kill keyslot %d of token %d: %w", tok.Keyslot, tok.ID, err)
	}
	return nil
}
