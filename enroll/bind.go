package enroll

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
)

// BindingTokenType is the LUKS2 token that binds a volume to one machine:
// its TPM, under the owner's signed boot policy.
//
// Why: anyone who can run code with the TPM (a live system with Secure
// Boot off, say) can seal a secret of their choosing to the very policy
// our tokens use, put it in a systemd-tpm2 token of a volume they
// formatted with the same UUID, and switch Secure Boot back on. The
// initrd would unseal that secret, open the volume and boot their root.
// The binding stops it: a tag only a boot in the owner's signed state can
// compute (tpm2.PolicyHMAC: a TPM-derived key usable only with PCR 11
// signed by the owner's key, PCR 7 as it is and PCR 15 all-zero), over the
// volume's UUID and a digest of its volume key. The attacker can neither
// compute it for their volume (they cannot satisfy the policy) nor reuse
// ours (it covers the key they do not have).
const BindingTokenType = "initos-binding"

// bindingLabel derives the binding key (its unique field).
const bindingLabel = "initos volume binding v1"

// Binding errors.
var (
	// ErrUnbound: the volume has no binding token.
	ErrUnbound = errors.New("volume has no " + BindingTokenType + " token: it was not bound to this machine")
	// ErrBindingMismatch: the tag differs: the volume was bound on
	// another machine (or TPM owner) or substituted.
	ErrBindingMismatch = errors.New("volume binding does not match: this volume was not bound to this machine's TPM under the signed boot policy (substituted, or from another machine)")
)

// bindingToken is the token JSON.
type bindingToken struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
	Version  int      `json:"initos-binding-version"`
	Tag      string   `json:"initos-binding-tag"`            // hex HMAC-SHA256
	PCRs     []int    `json:"initos-binding-pcrs"`           // bound by value (15 literally all-zero)
	Primary  string   `json:"initos-tpm2-primary-name"`      // pinned storage primary key name
	PCR7     string   `json:"initos-binding-pcr7,omitempty"` // PCR 7 at binding, for messages
}

// bindingPolicy is the policy of the binding key: PCR 11 signed by pub,
// PCR 7 as it is now, PCR 15 all-zero (no volume opened yet).
func bindingPolicy(pub *rsa.PublicKey, primary []byte) tpm2.HMACPolicy {
	return tpm2.HMACPolicy{PublicKey: pub, PublicKeyPCRs: []int{11}, PCRs: []int{7, VolumePCR},
		Values: map[int][]byte{VolumePCR: make([]byte, 32)}, PrimaryName: primary}
}

// bindingData is what the tag covers: the LUKS UUID and a keyed digest of
// the volume key (the key itself never goes to the TPM).
func bindingData(uuid string, vk []byte) []byte {
	m := hmac.New(sha256.New, vk)
	m.Write([]byte("initos-binding volume key"))
	return append([]byte(bindingLabel+"\x00"+uuid+"\x00"), m.Sum(nil)...)
}

// Bind computes the volume's binding tag with the TPM and stores it in an
// initos-binding token (replacing an older one). It must run in a boot
// whose PCR 11 the signature covers (the installer, in the signed
// initrd phase), before any volume was measured into PCR 15. sig is the
// UKI's .pcrsig, pub its .pcrpkey.
func Bind(t transport.TPM, d luks2.Device, h *luks2.Header, vk *luks2.Secret, pub *rsa.PublicKey, sig []byte) (int, error) {
	if err := h.VerifyVolumeKey(vk.Bytes()); err != nil {
		return -1, fmt.Errorf("bind volume: %w", err)
	}
	tag, primary, err := tpm2.PolicyHMAC(t, bindingPolicy(pub, nil), []byte(bindingLabel), bindingData(h.UUID(), vk.Bytes()), sig)
	if err != nil {
		return -1, fmt.Errorf("bind volume: %w", err)
	}
	tok := bindingToken{Type: BindingTokenType, Keyslots: []string{}, Version: 1, Tag: hex.EncodeToString(tag),
		PCRs: []int{7, VolumePCR}, Primary: hex.EncodeToString(primary)}
	if cur, err := tpm2.ReadPCRs(t, tpm2.SHA256, []int{7}); err == nil {
		tok.PCR7 = hex.EncodeToString(cur[7])
	}
	raw, err := json.Marshal(tok)
	if err != nil {
		return -1, err
	}
	for _, id := range bindingTokenIDs(h) {
		if err := h.RemoveToken(d, id); err != nil {
			return -1, fmt.Errorf("bind volume: remove the old binding token %d: %w", id, err)
		}
	}
	id, err := h.AddToken(d, -1, raw)
	if err != nil {
		return -1, fmt.Errorf("bind volume: add token: %w", err)
	}
	return id, nil
}

// VerifyBinding checks the volume's binding token against the tag the
// TPM computes now for its UUID and volume key vk. It wraps ErrUnbound
// without a token, ErrBindingMismatch when the tag differs, and the TPM's
// errors (tpm2.ErrNoSignature, tpm2.ErrPolicyMismatch: PCR 15 not zero,
// tpm2.ErrPrimaryMismatch) when the binding key cannot be used.
func VerifyBinding(t transport.TPM, h *luks2.Header, vk *luks2.Secret, pub *rsa.PublicKey, sig []byte) error {
	ids := bindingTokenIDs(h)
	if len(ids) == 0 {
		return ErrUnbound
	}
	var tok bindingToken
	if err := json.Unmarshal(h.Meta.Tokens[strconv.Itoa(ids[0])], &tok); err != nil {
		return fmt.Errorf("%w: token %d: %v", ErrBindingMismatch, ids[0], err)
	}
	want, err := hex.DecodeString(tok.Tag)
	primary, perr := hex.DecodeString(tok.Primary)
	if err != nil || perr != nil || len(want) != sha256.Size || tok.Version != 1 {
		return fmt.Errorf("%w: token %d is malformed", ErrBindingMismatch, ids[0])
	}
	got, _, err := tpm2.PolicyHMAC(t, bindingPolicy(pub, primary), []byte(bindingLabel), bindingData(h.UUID(), vk.Bytes()), sig)
	if err != nil {
		return fmt.Errorf("verify binding: %w", err)
	}
	if !hmac.Equal(got, want) {
		return ErrBindingMismatch
	}
	return nil
}

// bindingTokenIDs returns the ids of the header's binding tokens.
func bindingTokenIDs(h *luks2.Header) []int {
	var ids []int
	sids, toks := h.Tokens()
	for i, sid := range sids {
		if toks[i] != nil && toks[i].Type == BindingTokenType {
			id, _ := strconv.Atoi(sid)
			ids = append(ids, id)
		}
	}
	return ids
}
