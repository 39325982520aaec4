package enroll

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
)

// KeyslotPBKDF is the PBKDF of keyslots holding a TPM-sealed or recovery
// secret, as systemd-cryptenroll makes them: the secret has full entropy,
// so the KDF does not need to be slow.
var KeyslotPBKDF = luks2.PBKDF{Type: "pbkdf2", Hash: "sha512", Iterations: 1000}

// Enrollment says where Enroll put the new key.
type Enrollment struct {
	Keyslot int // the new keyslot
	Token   int // the new systemd-tpm2 token naming it
}

// Enroll seals a new random secret to the TPM under policy p and adds it
// to the volume: a keyslot whose passphrase is base64(secret) and a
// systemd-tpm2 token holding the sealed object. vk is the volume key (from
// a passphrase, a recovery key or a previous token).
//
// Steps: 1. seal a random 32-byte secret (tpm2.Seal: salted, encrypted
// session to the storage primary key, whose name the token pins); 2. add
// the keyslot; 3. add the token; if that fails, kill the keyslot again so
// no keyslot without a token remains.
//
// Enroll does not look at the firmware: callers that bind PCR 7 check
// CheckSecureBoot first.
func Enroll(t transport.TPM, d luks2.Device, h *luks2.Header, vk *luks2.Secret, p Policy) (Enrollment, error) {
	if err := h.VerifyVolumeKey(vk.Bytes()); err != nil {
		return Enrollment{}, fmt.Errorf("enroll TPM2: %w", err)
	}
	opts := p.sealOptions()
	secret, sealed, err := tpm2.Seal(t, opts)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll TPM2: %w", err)
	}
	pass := passphrase(secret)
	clear(secret)
	defer pass.Destroy()
	slot, err := h.AddKey(d, vk.Bytes(), pass.Bytes(), luks2.KeyslotOptions{PBKDF: KeyslotPBKDF})
	if err != nil {
		return Enrollment{}, fmt.Errorf("enroll TPM2: add keyslot: %w", err)
	}
	id, err := addToken(d, h, sealed, slot)
	if err != nil {
		return Enrollment{}, errors.Join(fmt.Errorf("enroll TPM2: %w", err), h.KillSlot(d, slot))
	}
	return Enrollment{Keyslot: slot, Token: id}, nil
}

func addToken(d luks2.Device, h *luks2.Header, sealed *tpm2.Sealed, slot int) (int, error) {
	raw, err := tpm2.NewToken(sealed, slot).Marshal()
	if err != nil {
		return -1, fmt.Errorf("encode token: %w", err)
	}
	id, err := h.AddToken(d, -1, raw)
	if err != nil {
		return -1, fmt.Errorf("add token: %w", err)
	}
	return id, nil
}

// passphrase returns the keyslot passphrase for a sealed secret:
// base64 (standard, padded) of it, as systemd-cryptenroll, in locked memory.
func passphrase(secret []byte) *luks2.Secret {
	s := luks2.NewSecret(base64.StdEncoding.EncodedLen(len(secret)))
	base64.StdEncoding.Encode(s.Bytes(), secret)
	return s
}
