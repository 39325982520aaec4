package boot

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

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

// UnlockVolume tries each systemd-tpm2 token of the header.
// TODO(enroll): replace by enroll.Unlock once package enroll lands.
func (d *deviceTPM) UnlockVolume(ctx context.Context, v *Volume, pcrSig []byte) (*luks2.Secret, error) {
	f, err := os.Open(v.Device)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, toks := v.Header.Tokens()
	var errs []error
	for i, id := range ids {
		if toks[i] == nil || toks[i].Type != tpm2.TokenType {
			continue
		}
		vk, err := d.unlockToken(f, v.Header, v.Header.Meta.Tokens[id], pcrSig)
		if err == nil {
			return vk, nil
		}
		errs = append(errs, fmt.Errorf("token %s: %w", id, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no %s token in the LUKS2 header", tpm2.TokenType)
	}
	return nil, errors.Join(errs...)
}

func (d *deviceTPM) unlockToken(f *os.File, h *luks2.Header, raw []byte, sig []byte) (*luks2.Secret, error) {
	tok, err := tpm2.ParseToken(raw)
	if err != nil {
		return nil, err
	}
	slot, err := tok.Keyslot()
	if err != nil {
		return nil, err
	}
	s, err := tok.Sealed()
	if err != nil {
		return nil, err
	}
	secret, err := tpm2.Unseal(d.t, s, tpm2.UnsealOptions{Signature: sig})
	if err != nil {
		return nil, err
	}
	pass := []byte(base64.StdEncoding.EncodeToString(secret))
	clear(secret)
	defer clear(pass)
	return h.UnlockSlot(f, strconv.Itoa(slot), pass)
}

// VerifyBinding: TODO(binding).
func (d *deviceTPM) VerifyBinding(v *Volume, vk *luks2.Secret, pcrSig, pcrKey []byte) error {
	return ErrUnbound
}

// MeasureVolume extends pcr with HMAC-SHA256(volume key, identity).
// TODO(enroll): replace by enroll.MeasureVolume.
func (d *deviceTPM) MeasureVolume(v *Volume, vk *luks2.Secret, pcr int) error {
	m := hmac.New(sha256.New, vk.Bytes())
	m.Write([]byte(measureString(v.Name, v.UUID)))
	return tpm2.ExtendPCR(d.t, tpm2.SHA256, pcr, m.Sum(nil))
}

func (d *deviceTPM) Close() error { return d.t.Close() }
