package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/enroll"
	"initos/luks2"
	"initos/tpm2"
)

// deviceTPM is the TPM of the running system.
type deviceTPM struct {
	t transport.TPMCloser
}

// maxTPMWait bounds the wait for the TPM device: its drivers are built
// in or among the early modules, so it is there at once or never.
const maxTPMWait = 5 * time.Second

// openDeviceTPM waits for the kernel's TPM device (the resource manager
// /dev/tpmrm0, else /dev/tpm0) and opens it.
func openDeviceTPM(ctx context.Context, dev string, timeout time.Duration) (TPM, error) {
	var path string
	ok, err := waitFor(ctx, min(timeout, maxTPMWait), func() (bool, error) {
		for _, p := range []string{"tpmrm0", "tpm0"} {
			if exists(filepath.Join(dev, p)) {
				path = filepath.Join(dev, p)
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: neither %s/tpmrm0 nor %s/tpm0 appeared", ErrNoTPM, dev, dev)
	}
	t, err := tpm2.Open(tpm2.Device{Path: path})
	if err != nil {
		return nil, fmt.Errorf("open TPM %s: %w", path, err)
	}
	if filepath.Base(path) == "tpm0" {
		tpm2.FlushAll(t) // no resource manager: clear what a crashed client left
	}
	return &deviceTPM{t: t}, nil
}

func (d *deviceTPM) MeasurePhase(phase string) error {
	sum := sha256.Sum256([]byte(phase))
	return tpm2.ExtendPCR(d.t, tpm2.SHA256, PhasePCR, sum[:])
}

func (d *deviceTPM) ReadPCRs(pcrs []int) (map[int][]byte, error) {
	return tpm2.ReadPCRs(d.t, tpm2.SHA256, pcrs)
}

// UnlockVolume opens the volume key with the header's systemd-tpm2
// tokens (enroll.Unlock: pinned primary, salted session, signed policy).
func (d *deviceTPM) UnlockVolume(ctx context.Context, v *Volume, pcrSig []byte) (*luks2.Secret, error) {
	f, err := os.Open(v.Device)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vk, _, err := enroll.Unlock(d.t, f, v.Header, enroll.UnlockOptions{Signature: pcrSig})
	if err != nil {
		return nil, d.explain(err)
	}
	return vk, nil
}

// explain turns the TPM's policy errors into a *PCRMismatchError naming
// the PCRs with their expected and actual values.
func (d *deviceTPM) explain(err error) error {
	var ms []PCRMismatch
	var pe *tpm2.PolicyError
	if errors.As(err, &pe) {
		for _, m := range pe.Mismatches {
			ms = append(ms, PCRMismatch{PCR: m.PCR, Expected: hex.EncodeToString(m.Expected), Actual: hex.EncodeToString(m.Actual)})
		}
	}
	if errors.Is(err, tpm2.ErrNoSignature) {
		m := PCRMismatch{PCR: PhasePCR, Signed: true, Expected: "a value signed in the UKI's .pcrsig",
			Why: "no signature of this UKI covers the current value: another UKI, another phase, or a PCR 11 extended out of order"}
		if cur, rerr := d.ReadPCRs([]int{PhasePCR}); rerr == nil {
			m.Actual = hex.EncodeToString(cur[PhasePCR])
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return err
	}
	return &PCRMismatchError{PCRs: ms, Err: err}
}

// VerifyBinding checks the volume's initos-binding token with the UKI's
// PCR public key (enroll.VerifyBinding).
func (d *deviceTPM) VerifyBinding(v *Volume, vk *luks2.Secret, pcrSig, pcrKey []byte) error {
	if len(pcrKey) == 0 {
		return errors.New("cannot check the volume's binding: the UKI has no PCR public key (.pcrpkey; build it with --pcr-private-key)")
	}
	pub, err := tpm2.ParsePublicKeyPEM(pcrKey)
	if err != nil {
		return fmt.Errorf("the UKI's PCR public key: %w", err)
	}
	return enroll.VerifyBinding(d.t, v.Header, vk, pub, pcrSig)
}

// MeasureVolume extends the volume's identity into pcr, as
// systemd-cryptsetup (enroll.MeasureVolume measures into PCR 15).
func (d *deviceTPM) MeasureVolume(v *Volume, vk *luks2.Secret, pcr int) error {
	if pcr != enroll.VolumePCR {
		return fmt.Errorf("measure into PCR %d: only PCR %d is supported", pcr, enroll.VolumePCR)
	}
	return enroll.MeasureVolume(d.t, v.Header, v.Name, vk)
}

func (d *deviceTPM) Close() error { return d.t.Close() }

// Transport returns the TPM connection (for the control plane's reseal).
func (d *deviceTPM) Transport() transport.TPM { return d.t }
