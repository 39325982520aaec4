package install

import (
	"encoding/json"
	"fmt"

	"initos/luks2"
)

// TokenType is the LUKS2 token type of the install state.
const TokenType = "initos-install"

// Install token states.
const (
	StatePending  = "pending"
	StateComplete = "complete"
)

// Token is the install state kept in each LUKS2 header (a token that
// refers to no keyslot): the installer's journal for the one thing the
// disks cannot show without the key.
type Token struct {
	Type     string   `json:"type"`     // TokenType
	Keyslots []string `json:"keyslots"` // always empty
	// State is StatePending from the LUKS format on, StateComplete once
	// the root, initos.conf and the recovery key are in place.
	State string `json:"state"`
	// InstallID is the same on every volume of one install.
	InstallID string `json:"install_id"`
	// Disks are the stable ids of the install's disks, in order.
	Disks []string `json:"disks"`
	// Image is the digest of the root image (set when complete).
	Image string `json:"image,omitempty"`
	// Time is when the state was written (RFC 3339, UTC).
	Time string `json:"time,omitempty"`
}

// marshal encodes t as a token object.
func (t *Token) marshal() (json.RawMessage, error) {
	c := *t
	c.Type, c.Keyslots = TokenType, []string{}
	return json.Marshal(&c)
}

// findToken returns the install token of h: a complete one if any (a
// crash between adding the complete token and removing the pending one
// leaves both), else the first pending one, else nil.
func findToken(h *luks2.Header) *Token {
	ids, toks := h.Tokens()
	var found *Token
	for i, id := range ids {
		if toks[i] == nil || toks[i].Type != TokenType {
			continue
		}
		var t Token
		if err := json.Unmarshal(h.Meta.Tokens[id], &t); err != nil {
			continue
		}
		if t.State == StateComplete {
			return &t
		}
		if found == nil {
			found = &t
		}
	}
	return found
}

// tokenIDs returns the ids of h's install tokens.
func tokenIDs(h *luks2.Header) []int {
	ids, toks := h.Tokens()
	var out []int
	for i, id := range ids {
		if toks[i] != nil && toks[i].Type == TokenType {
			var n int
			fmt.Sscan(id, &n)
			out = append(out, n)
		}
	}
	return out
}

// markComplete replaces h's install tokens by t (state complete): the new
// token is added first and the old ones removed after, so that a crash
// in between leaves a complete token, which wins.
func markComplete(d luks2.Device, h *luks2.Header, t *Token) error {
	old := tokenIDs(h)
	raw, err := t.marshal()
	if err != nil {
		return err
	}
	if _, err := h.AddToken(d, -1, raw); err != nil {
		return fmt.Errorf("add the complete install token: %w", err)
	}
	for _, id := range old {
		if err := h.RemoveToken(d, id); err != nil {
			return fmt.Errorf("remove the pending install token %d: %w", id, err)
		}
	}
	return nil
}
