package luks2

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// modhex is the alphabet of systemd's recovery keys (Yubico "modhex").
const modhex = "cbdefghijklnrtuv"

// NewRecoveryKey returns a random recovery key in systemd-cryptenroll's
// format: 256 bits as 64 modhex characters in 8 dash-separated groups.
func NewRecoveryKey(r io.Reader) (string, error) {
	var b [32]byte
	if err := randomBytes(r, b[:]); err != nil {
		return "", fmt.Errorf("new recovery key: %w", err)
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(modhex[c>>4])
		sb.WriteByte(modhex[c&0xf])
	}
	clear(b[:])
	return sb.String(), nil
}

// recoveryPBKDF is the cheap PBKDF systemd uses for high-entropy recovery
// keys: pbkdf2-sha512, 1000 iterations.
var recoveryPBKDF = PBKDF{Type: "pbkdf2", Hash: "sha512", Iterations: MinPBKDF2Iterations}

// AddRecoveryKey adds a keyslot for a new recovery key (see NewRecoveryKey)
// and a "systemd-recovery" token pointing at it, as systemd-cryptenroll
// --recovery-key does; the key is the passphrase, dashes included. It
// returns the key and the keyslot id.
func (h *Header) AddRecoveryKey(d Device, vk []byte, r io.Reader) (string, int, error) {
	key, err := NewRecoveryKey(r)
	if err != nil {
		return "", -1, err
	}
	id, err := h.AddKey(d, vk, []byte(key), KeyslotOptions{PBKDF: recoveryPBKDF, Rand: r})
	if err != nil {
		return "", -1, fmt.Errorf("add recovery key: %w", err)
	}
	tok, _ := json.Marshal(Token{Type: "systemd-recovery", Keyslots: []string{fmt.Sprint(id)}})
	if _, err := h.AddToken(d, -1, tok); err != nil {
		return "", -1, fmt.Errorf("add recovery key token: %w", err)
	}
	return key, id, nil
}
