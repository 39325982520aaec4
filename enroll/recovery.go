package enroll

import (
	"crypto/rand"

	"initos/luks2"
)

// AddRecoveryKey adds a recovery key in the format systemd-cryptenroll
// --recovery-key prints (256 random bits as 64 modhex characters in 8
// dash-separated groups: luks2.NewRecoveryKey), as a PBKDF2 keyslot with
// a "systemd-recovery" token. It returns the key, to be shown to the user
// once, and the keyslot. The key is the passphrase as typed, dashes
// included, so `cryptsetup open` and systemd-cryptsetup take it too.
func AddRecoveryKey(d luks2.Device, h *luks2.Header, vk *luks2.Secret) (string, int, error) {
	key, slot, err := h.AddRecoveryKey(d, vk.Bytes(), rand.Reader)
	if err != nil {
		return "", -1, err
	}
	return key, slot, nil
}
