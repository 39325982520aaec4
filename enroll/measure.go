package enroll

import (
	"crypto/hmac"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
)

// VolumeIdentity is the string systemd-cryptsetup measures a volume as:
// "cryptsetup:" NAME ":" UUID, where NAME is the dm name with ':', '\',
// control and non-ASCII bytes escaped as \xHH (systemd's xescape(name,
// ":")), and UUID the LUKS2 header's UUID.
func VolumeIdentity(name, uuid string) string {
	var b strings.Builder
	b.WriteString("cryptsetup:")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < ' ' || c >= 127 || c == '\\' || c == ':' {
			fmt.Fprintf(&b, "\\x%02x", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte(':')
	b.WriteString(uuid)
	return b.String()
}

// VolumeDigest returns what MeasureVolume extends into one bank:
// HMAC(volume key, VolumeIdentity(name, uuid)) with the bank's hash. The
// volume key is the HMAC key, so the digest on the bus reveals nothing
// about it; the digest differs for every volume key, so a substituted
// volume (same UUID, another key) measures differently.
func VolumeDigest(bank tpm2.Bank, name, uuid string, vk []byte) ([]byte, error) {
	h, err := tpm2.BankHash(bank)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h.New, vk)
	m.Write([]byte(VolumeIdentity(name, uuid)))
	return m.Sum(nil), nil
}

// MeasureVolume extends VolumePCR (15) with the identity of a volume that
// was just opened under dm name name, in every allocated bank, exactly as
// systemd-cryptsetup with tpm2-measure-pcr=yes (systemd 253+,
// measure_volume_key): for each bank, PCR 15 = H(PCR 15 ||
// HMAC-H(vk, "cryptsetup:NAME:UUID")). From then on a policy binding PCR
// 15 to all-zero (DefaultPolicy) cannot be satisfied again in this boot.
func MeasureVolume(t transport.TPM, h *luks2.Header, name string, vk *luks2.Secret) error {
	banks, err := tpm2.AllocatedBanks(t, VolumePCR)
	if err != nil {
		return fmt.Errorf("measure volume %s: %w", name, err)
	}
	if len(banks) == 0 {
		return fmt.Errorf("measure volume %s: PCR %d is allocated in no bank the TPM offers", name, VolumePCR)
	}
	digests := map[tpm2.Bank][]byte{}
	for _, b := range banks {
		if digests[b], err = VolumeDigest(b, name, h.UUID(), vk.Bytes()); err != nil {
			return fmt.Errorf("measure volume %s: %w", name, err)
		}
	}
	if err := tpm2.ExtendBanks(t, VolumePCR, digests); err != nil {
		return fmt.Errorf("measure volume %s: %w", name, err)
	}
	return nil
}
