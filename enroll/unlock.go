package enroll

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/luks2"
	"initos/tpm2"
)

// ErrNoToken: the header has no systemd-tpm2 token.
var ErrNoToken = errors.New("no " + tpm2.TokenType + " token in the LUKS2 header")

// UnlockOptions carries what the boot or the user supplies at unlock.
type UnlockOptions struct {
	// PIN for tokens enrolled with one.
	PIN []byte
	// Signature is the signed PCR policy JSON (.pcrsig; systemd-stub puts
	// it at /.extra/tpm2-pcr-signature.json), for tokens with a signed
	// policy.
	Signature []byte
}

// Token is one systemd-tpm2 token of a header.
type Token struct {
	ID      int          // token id
	Keyslot int          // the keyslot it opens
	Sealed  *tpm2.Sealed // the sealed secret and its policy
	Raw     *tpm2.Token  // the token JSON, decoded
}

// TokenError is the failure of one token; Unlock returns them joined.
type TokenError struct {
	ID  int
	Err error
}

func (e *TokenError) Error() string { return fmt.Sprintf("token %d: %v", e.ID, e.Err) }
func (e *TokenError) Unwrap() error { return e.Err }

// Tokens returns the header's systemd-tpm2 tokens in id order. A token
// that does not parse is returned as a *TokenError in errs and skipped.
func Tokens(h *luks2.Header) (toks []Token, errs []error) {
	ids, common := h.Tokens()
	for i, sid := range ids {
		if common[i] == nil || common[i].Type != tpm2.TokenType {
			continue
		}
		id, _ := strconv.Atoi(sid)
		tok, err := parseToken(id, h.Meta.Tokens[sid])
		if err != nil {
			errs = append(errs, &TokenError{ID: id, Err: err})
			continue
		}
		toks = append(toks, tok)
	}
	return toks, errs
}

func parseToken(id int, raw []byte) (Token, error) {
	tok, err := tpm2.ParseToken(raw)
	if err != nil {
		return Token{}, err
	}
	slot, err := tok.Keyslot()
	if err != nil {
		return Token{}, err
	}
	s, err := tok.Sealed()
	if err != nil {
		return Token{}, err
	}
	return Token{ID: id, Keyslot: slot, Sealed: s, Raw: tok}, nil
}

// Unlock tries each systemd-tpm2 token of h in id order: unseal its
// secret with the TPM, open its keyslot with base64(secret). It returns
// the volume key of the first that opens and that token. The caller
// destroys the key.
//
// When none opens the error joins one *TokenError per token; errors.Is
// finds tpm2.ErrPolicyMismatch (with a *tpm2.PolicyError naming the PCRs
// that differ, expected and actual values, when they can be known),
// tpm2.ErrNoSignature, tpm2.ErrWrongPIN, tpm2.ErrLockout,
// tpm2.ErrPrimaryMismatch, luks2.ErrWrongPassphrase; ErrNoToken when there
// is no token at all.
func Unlock(t transport.TPM, d io.ReaderAt, h *luks2.Header, o UnlockOptions) (*luks2.Secret, Token, error) {
	toks, errs := Tokens(h)
	for _, tok := range toks {
		vk, err := UnlockToken(t, d, h, tok, o)
		if err == nil {
			return vk, tok, nil
		}
		errs = append(errs, &TokenError{ID: tok.ID, Err: err})
	}
	if len(errs) == 0 {
		return nil, Token{}, fmt.Errorf("unlock with TPM2: %w", ErrNoToken)
	}
	return nil, Token{}, fmt.Errorf("unlock with TPM2: %w", errors.Join(errs...))
}

// UnlockToken unseals one token's secret and opens its keyslot.
func UnlockToken(t transport.TPM, d io.ReaderAt, h *luks2.Header, tok Token, o UnlockOptions) (*luks2.Secret, error) {
	secret, err := tpm2.Unseal(t, tok.Sealed, tpm2.UnsealOptions{PIN: o.PIN, Signature: o.Signature})
	if err != nil {
		return nil, err
	}
	pass := passphrase(secret)
	clear(secret)
	defer pass.Destroy()
	return h.UnlockSlot(d, strconv.Itoa(tok.Keyslot), pass.Bytes())
}
