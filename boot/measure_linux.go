package boot

import (
	"context"
	"errors"
	"fmt"
)

// measureEnter is the "measure" step: open the TPM and extend PCR 11 with
// "enter-initrd". Signed PCR 11 policies are made for this value
// (`initos uki build --pcr-private-key`, phase enter-initrd): they unseal
// from here on and stop at "leave-initrd", measured before switch_root.
//
// Without a TPM the step logs that and succeeds: unlock then fails with
// "no TPM", in the failure state the control plane serves (remote unlock).
func (b *Boot) measureEnter(ctx context.Context) error {
	t, err := b.openTPM(ctx)
	if errors.Is(err, ErrNoTPM) {
		b.Log.Printf("measure: %v: PCR 11 not measured", err)
		return nil
	}
	if err != nil {
		return err
	}
	b.tpm = t
	if err := t.MeasurePhase(PhaseEnterInitrd); err != nil {
		return fmt.Errorf("measure %q into PCR %d: %w", PhaseEnterInitrd, PhasePCR, err)
	}
	b.Log.Printf("measure: %q extended into PCR %d", PhaseEnterInitrd, PhasePCR)
	return nil
}

// ErrNoTPM reports a machine without a TPM device.
var ErrNoTPM = errors.New("no TPM")

func (b *Boot) openTPM(ctx context.Context) (TPM, error) {
	if b.opts.OpenTPM != nil {
		return b.opts.OpenTPM(ctx)
	}
	return openDeviceTPM(ctx, b.paths.Dev, b.Config.Unlock.DeviceTimeout())
}
