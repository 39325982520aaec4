package tpm2

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Errors callers branch on. They are wrapped with the command that failed.
var (
	// ErrNoTPM: no TPM device node or swtpm socket is there.
	ErrNoTPM = errors.New("no TPM found")
	// ErrPolicyMismatch: the PCR values (or the signed policy) do not
	// satisfy the sealed object's policy: the machine booted something
	// else than what the key was sealed to.
	ErrPolicyMismatch = errors.New("PCR policy mismatch: the TPM's PCR values differ from the ones the key was sealed to")
	// ErrWrongPIN: the PIN is wrong (TPM_RC_AUTH_FAIL / TPM_RC_BAD_AUTH);
	// each try counts against the TPM's dictionary-attack limit.
	ErrWrongPIN = errors.New("wrong TPM PIN")
	// ErrLockout: the TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT)
	// and refuses authorizations until its recovery time passes or the
	// lockout hierarchy resets it.
	ErrLockout = errors.New("TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT): wait for the recovery time or reset it with the lockout authorization")
	// ErrPrimaryMismatch: the storage primary key is not the one the
	// object was sealed under (its name differs from the pinned one), so
	// no salted session is started with it.
	ErrPrimaryMismatch = errors.New("the TPM's storage primary key is not the one recorded at enrollment")
	// ErrNoSignature: a signed policy has no signature for the current PCR
	// values and public key.
	ErrNoSignature = errors.New("no PCR signature matches the current PCR values and public key")
)

// classify maps TPM response codes callers care about to the sentinels,
// keeping the TPM error in the chain.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("%s: %w: %w", op, ErrLockout, err)
	case errors.Is(err, tpm2.TPMRCPolicyFail), errors.Is(err, tpm2.TPMRCPCRChanged):
		return fmt.Errorf("%s: %w: %w", op, ErrPolicyMismatch, err)
	case errors.Is(err, tpm2.TPMRCAuthFail), errors.Is(err, tpm2.TPMRCBadAuth):
		return fmt.Errorf("%s: %w: %w", op, ErrWrongPIN, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Counter wraps a TPM and counts the commands sent through it (round trips),
// for benchmarks and tests.
type Counter struct {
	TPM transport.TPM
	n   atomic.Int64
}

// Send implements transport.TPM.
func (c *Counter) Send(cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.TPM.Send(cmd)
}

// Count returns the number of commands sent so far.
func (c *Counter) Count() int { return int(c.n.Load()) }
