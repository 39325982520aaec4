package boot

import (
	"context"
	"fmt"
	"strings"

	"initos/luks2"
)

// Boot phases measured into PCR 11, exactly as systemd-pcrphase does
// (systemd's docs/TPM2_PCR_MEASUREMENTS.md: the SHA-256 of the phase
// string, UTF-8, without a trailing NUL, extended into PCR 11).
const (
	PhaseEnterInitrd = "enter-initrd"
	PhaseLeaveInitrd = "leave-initrd"
	PhasePCR         = 11
)

// TPM is what the flow asks of the TPM. The real one talks to the kernel's
// TPM device (tpm_linux.go); tests use fakes.
type TPM interface {
	// MeasurePhase extends PCR 11 (SHA-256 bank) with the digest of the
	// phase string, as systemd-pcrphase.
	MeasurePhase(phase string) error
	// ReadPCRs reads PCRs of the SHA-256 bank.
	ReadPCRs(pcrs []int) (map[int][]byte, error)
	// UnlockVolume unseals a systemd-tpm2 token of the volume's header,
	// with the UKI's signed PCR policy (.pcrsig), and returns the volume
	// key. A PCR mismatch is a *PCRMismatchError naming the PCRs.
	UnlockVolume(ctx context.Context, v *Volume, pcrSig []byte) (*luks2.Secret, error)
	// VerifyBinding checks that the volume carries an InitOS binding to
	// this machine's TPM under the signed boot policy (pcrKey is the UKI's
	// .pcrpkey). It must run before any volume is measured.
	VerifyBinding(v *Volume, vk *luks2.Secret, pcrSig, pcrKey []byte) error
	// MeasureVolume extends pcr with the opened volume's identity, as
	// systemd-cryptsetup's tpm2-measure-pcr does.
	MeasureVolume(v *Volume, vk *luks2.Secret, pcr int) error
	Close() error
}

// PCRMismatch is one PCR whose value kept the TPM from unsealing.
type PCRMismatch struct {
	PCR      int
	Expected string // hex; for the signed PCR 11: the signed values, comma-separated; "" if unknown
	Actual   string // hex
	Signed   bool   // bound through the signed policy (.pcrsig), not by value
	Why      string // a hint: "Secure Boot is off", ...
}

// String says which PCR differs, with its values and why.
func (m PCRMismatch) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "PCR %d", m.PCR)
	if m.Signed {
		b.WriteString(" (signed policy)")
	}
	b.WriteString(" mismatch:")
	if m.Expected != "" {
		fmt.Fprintf(&b, " expected %s,", m.Expected)
	}
	fmt.Fprintf(&b, " actual %s", m.Actual)
	if m.Why != "" {
		fmt.Fprintf(&b, " (%s)", m.Why)
	}
	return b.String()
}

// PCRMismatchError reports that a volume's TPM policy does not hold in
// the current boot, naming the PCRs that differ.
type PCRMismatchError struct {
	PCRs []PCRMismatch
	Err  error // the TPM's error
}

// Error lists the mismatching PCRs, or the TPM's error when unknown.
func (e *PCRMismatchError) Error() string {
	if len(e.PCRs) == 0 {
		return e.Err.Error()
	}
	parts := make([]string, len(e.PCRs))
	for i, m := range e.PCRs {
		parts[i] = m.String()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the TPM's error.
func (e *PCRMismatchError) Unwrap() error { return e.Err }
