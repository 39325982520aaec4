package luks2

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// RemoveKey kills the keyslot the passphrase opens.
func (h *Header) RemoveKey(d Device, pass []byte) (int, error) {
	return h.RemoveKeyContext(context.Background(), d, pass)
}

// RemoveKeyContext is RemoveKey that stops while unlocking when ctx is
// cancelled.
func (h *Header) RemoveKeyContext(ctx context.Context, d Device, pass []byte) (int, error) {
	vk, id, err := h.UnlockContext(ctx, d, pass)
	if err != nil {
		return -1, fmt.Errorf("remove key: %w", err)
	}
	vk.Destroy()
	return id, h.KillSlot(d, id)
}

// ChangeKey replaces the passphrase of the keyslot that old opens: the new
// material goes to a free area, the header then points the same keyslot id
// at it, and only then is the old area wiped.
func (h *Header) ChangeKey(d Device, old, pass []byte, o KeyslotOptions) (int, error) {
	return h.ChangeKeyContext(context.Background(), d, old, pass, o)
}

// ChangeKeyContext is ChangeKey that stops before writing anything when
// ctx is cancelled while unlocking or deriving the new key.
func (h *Header) ChangeKeyContext(ctx context.Context, d Device, old, pass []byte, o KeyslotOptions) (int, error) {
	if err := h.checkWritable(); err != nil {
		return -1, fmt.Errorf("change key: %w", err)
	}
	vk, id, err := h.UnlockContext(ctx, d, old)
	if err != nil {
		return -1, fmt.Errorf("change key: %w", err)
	}
	defer vk.Destroy()
	sid := strconv.Itoa(id)
	prev := h.Meta.Keyslots[sid]
	if o.Priority == nil {
		o.Priority = prev.Priority
	}
	k, err := h.writeKeyslot(ctx, d, vk.Bytes(), pass, o)
	if err != nil {
		return -1, fmt.Errorf("change key of keyslot %d: %w", id, err)
	}
	next := h.Meta.clone()
	next.Keyslots[sid] = k
	if err := h.commit(d, next); err != nil {
		return -1, fmt.Errorf("change key of keyslot %d: %w", id, err)
	}
	if err := wipeArea(d, prev); err != nil {
		return id, fmt.Errorf("change key of keyslot %d: old area: %w", id, err)
	}
	return id, nil
}

// AddToken stores a raw token object (it must have a string "type" and a
// "keyslots" array of existing keyslot ids) under id, or under the lowest
// free id when id < 0, and returns the id.
func (h *Header) AddToken(d Device, id int, raw json.RawMessage) (int, error) {
	if id < 0 {
		var err error
		if id, err = freeID(h.Meta.Tokens); err != nil {
			return -1, fmt.Errorf("add token: %w", err)
		}
	}
	sid := strconv.Itoa(id)
	if id > maxID {
		return -1, fmt.Errorf("add token %d: id above %d", id, maxID)
	}
	if _, used := h.Meta.Tokens[sid]; used {
		return -1, fmt.Errorf("add token %d: id in use", id)
	}
	if !json.Valid(raw) {
		return -1, fmt.Errorf("add token %d: invalid json", id)
	}
	if err := h.checkWritable(); err != nil {
		return -1, fmt.Errorf("add token %d: %w", id, err)
	}
	next := h.Meta.clone()
	if next.Tokens == nil {
		next.Tokens = map[string]json.RawMessage{}
	}
	next.Tokens[sid] = raw
	if _, err := next.parseToken(sid, raw); err != nil {
		return -1, fmt.Errorf("add token: %w", err)
	}
	if err := h.commit(d, next); err != nil {
		return -1, fmt.Errorf("add token %d: %w", id, err)
	}
	return id, nil
}

// RemoveToken deletes token id.
func (h *Header) RemoveToken(d Device, id int) error {
	sid := strconv.Itoa(id)
	if _, ok := h.Meta.Tokens[sid]; !ok {
		return fmt.Errorf("remove token %d: no such token", id)
	}
	if err := h.checkWritable(); err != nil {
		return fmt.Errorf("remove token %d: %w", id, err)
	}
	next := h.Meta.clone()
	delete(next.Tokens, sid)
	if err := h.commit(d, next); err != nil {
		return fmt.Errorf("remove token %d: %w", id, err)
	}
	return nil
}

// Tokens returns the token ids in numeric order with their parsed common
// fields.
func (h *Header) Tokens() ([]string, []*Token) {
	ids := sortedIDs(h.Meta.Tokens)
	toks := make([]*Token, len(ids))
	for i, id := range ids {
		toks[i], _ = h.Meta.parseToken(id, h.Meta.Tokens[id])
	}
	return ids, toks
}
