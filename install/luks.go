package install

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"initos/enroll"
	"initos/luks2"
)

// EnrollFunc adds the TPM2 unlock of one volume: a keyslot holding a
// TPM-sealed secret and its token(s), for volume key vk, to the header h
// on the staging device d. Run calls it for every volume, unless the TPM
// is disabled.
type EnrollFunc func(d luks2.Device, h *luks2.Header, vk *luks2.Secret) error

// volumeKeySize is the aes-xts-plain64 key: 512 bits.
const volumeKeySize = 64

// newVolumeKey returns a random volume key in locked memory.
func newVolumeKey() (*luks2.Secret, error) {
	vk := luks2.NewSecret(volumeKeySize)
	if _, err := io.ReadFull(rand.Reader, vk.Bytes()); err != nil {
		vk.Destroy()
		return nil, fmt.Errorf("volume key: %w", err)
	}
	return vk, nil
}

// stageVolume builds the whole LUKS2 header region of a new volume in
// memory: keyslot 0 = the recovery key with its systemd-recovery token,
// the TPM2 keyslot and token (enroll), and the pending install token.
func stageVolume(vk *luks2.Secret, recovery string, tok *Token, enrollTPM EnrollFunc) (*memDevice, *luks2.Header, error) {
	mem := &memDevice{max: luks2.DefaultDataOffset}
	h, err := luks2.Format(mem, []byte(recovery), luks2.FormatOptions{Label: "initos", VolumeKey: vk.Bytes(), PBKDF: enroll.KeyslotPBKDF})
	if err != nil {
		return nil, nil, err
	}
	if _, err := h.AddToken(mem, -1, []byte(`{"type":"systemd-recovery","keyslots":["0"]}`)); err != nil {
		return nil, nil, fmt.Errorf("recovery key token: %w", err)
	}
	if enrollTPM != nil {
		if err := enrollTPM(mem, h, vk); err != nil {
			return nil, nil, fmt.Errorf("enroll the TPM: %w", err)
		}
	}
	raw, err := tok.marshal()
	if err == nil {
		_, err = h.AddToken(mem, -1, raw)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("install token: %w", err)
	}
	return mem, h, nil
}

// commitVolume writes a staged header region to the partition, the
// header last: first the keyslots area, then the secondary header copy,
// then the primary, each synced. Until the primary lands, a crash leaves
// either no valid header or the old one (whose pending token makes the
// next run format again).
func commitVolume(part string, mem *memDevice, h *luks2.Header) error {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_EXCL, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := mem.Bytes()
	meta := int64(h.MetadataSize())
	for _, r := range [][2]int64{{2 * meta, int64(len(b))}, {meta, 2 * meta}, {0, meta}} {
		if r[1] <= r[0] {
			continue
		}
		if _, err := f.WriteAt(b[r[0]:r[1]], r[0]); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// readVolume reads the header of the volume on part.
func readVolume(part string) (*os.File, *luks2.Header, error) {
	f, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	h, err := luks2.ReadHeader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, h, nil
}
