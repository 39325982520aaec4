package luks2

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrWrongPassphrase is returned when no keyslot opens with the given
// passphrase (or a given volume key does not match the digest).
var ErrWrongPassphrase = errors.New("no keyslot opens with this passphrase")

// digestFor returns the digest that covers keyslot id (or, for id "",
// segment "0").
func (m *Metadata) digestFor(keyslot string) (string, *Digest, error) {
	for _, did := range sortedIDs(m.Digests) {
		d := m.Digests[did]
		list := d.Segments
		want := "0"
		if keyslot != "" {
			list, want = d.Keyslots, keyslot
		}
		for _, k := range list {
			if k == want {
				return did, d, nil
			}
		}
	}
	if keyslot == "" {
		return "", nil, fmt.Errorf("no digest for segment 0")
	}
	return "", nil, fmt.Errorf("keyslot %s: no digest", keyslot)
}

// verifyKey checks a volume key against digest d (spec §3.5:
// pbkdf2(key, salt, iterations, hash) equals digest).
func verifyKey(d *Digest, key []byte) (bool, error) {
	if err := d.usable(); err != nil {
		return false, fmt.Errorf("digest: %w", err)
	}
	k := KDF{Type: "pbkdf2", Hash: d.Hash, Iterations: d.Iterations, Salt: d.Salt}
	sum, err := derive(context.Background(), &k, key, len(d.Digest), nil)
	if err != nil {
		return false, err
	}
	defer sum.Destroy()
	return subtle.ConstantTimeCompare(sum.Bytes(), d.Digest) == 1, nil
}

// priorityOrder returns keyslot ids in unlock order: priority 2 (high)
// first, then normal ones; priority 0 (ignore) keyslots are left out.
func (m *Metadata) priorityOrder() []string {
	var high, normal []string
	for _, id := range sortedIDs(m.Keyslots) {
		switch p := m.Keyslots[id].Priority; {
		case p == nil || *p == 1:
			normal = append(normal, id)
		case *p == 2:
			high = append(high, id)
		}
	}
	return append(high, normal...)
}

// Unlock tries the passphrase on the keyslots in priority order and
// returns the volume key and the id of the keyslot that opened. It returns
// ErrWrongPassphrase when none does. The caller must Destroy the key.
func (h *Header) Unlock(d io.ReaderAt, pass []byte) (*Secret, int, error) {
	return h.UnlockContext(context.Background(), d, pass)
}

// UnlockContext is Unlock that stops at the next argon2 slice when ctx is
// cancelled. Keyslots this package cannot open (see KeyslotUsable) are
// skipped; when no usable keyslot is left the error wraps ErrUnsupported
// and names each one's reason, and a wrong passphrase mentions the
// keyslots that were not tried.
func (h *Header) UnlockContext(ctx context.Context, d io.ReaderAt, pass []byte) (*Secret, int, error) {
	if err := h.Unsupported(); err != nil {
		return nil, -1, fmt.Errorf("unlock: %w", err)
	}
	var skipped keyslotErrors
	tried := 0
	for _, id := range h.Meta.priorityOrder() {
		n, _ := strconv.Atoi(id)
		if err := h.KeyslotUsable(n); err != nil {
			skipped = append(skipped, err)
			continue
		}
		tried++
		vk, err := h.UnlockSlotContext(ctx, d, id, pass)
		if errors.Is(err, ErrWrongPassphrase) {
			continue
		}
		if err != nil {
			return nil, -1, err
		}
		return vk, n, nil
	}
	switch {
	case tried == 0 && len(skipped) > 0:
		return nil, -1, fmt.Errorf("unlock: no usable keyslot: %w", skipped)
	case len(skipped) > 0:
		return nil, -1, fmt.Errorf("unlock: %w (not tried: %v)", ErrWrongPassphrase, skipped)
	}
	return nil, -1, fmt.Errorf("unlock: %w", ErrWrongPassphrase)
}

// keyslotErrors are the reasons keyslots were skipped: "; "-separated,
// and errors.Is sees each.
type keyslotErrors []error

func (e keyslotErrors) Error() string {
	s := make([]string, len(e))
	for i, err := range e {
		s[i] = err.Error()
	}
	return strings.Join(s, "; ")
}

func (e keyslotErrors) Unwrap() []error { return e }

// UnlockSlot opens keyslot id with the passphrase (spec §4: derive the
// area key, decrypt the area, AF-merge, check the digest).
func (h *Header) UnlockSlot(d io.ReaderAt, id string, pass []byte) (*Secret, error) {
	return h.UnlockSlotContext(context.Background(), d, id, pass)
}

// UnlockSlotContext is UnlockSlot that stops at the next argon2 slice when
// ctx is cancelled.
func (h *Header) UnlockSlotContext(ctx context.Context, d io.ReaderAt, id string, pass []byte) (*Secret, error) {
	n, err := parseID("keyslot", id)
	if err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	if err := h.KeyslotUsable(n); err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	k := h.Meta.Keyslots[id]
	_, dig, _ := h.Meta.digestFor(id)
	splitSize := afSize(k.KeySize, k.AF.Stripes)
	if err := checkRegion(d, "keyslot "+id+" area", uint64(k.Area.Offset), splitSize); err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	// 1. Derive the area key from the passphrase.
	areaKey, err := derive(ctx, &k.KDF, pass, k.Area.KeySize, nil)
	if err != nil {
		return nil, fmt.Errorf("unlock keyslot %s: %w", id, err)
	}
	defer areaKey.Destroy()
	// 2. Read and decrypt the split key material.
	split := NewSecret(int(splitSize))
	defer split.Destroy()
	if _, err := d.ReadAt(split.Bytes(), int64(k.Area.Offset)); err != nil {
		return nil, fmt.Errorf("unlock keyslot %s: read area at %d: %w", id, k.Area.Offset, err)
	}
	if err := cryptArea(k, areaKey.Bytes(), split.Bytes(), false); err != nil {
		return nil, fmt.Errorf("unlock keyslot %s: %w", id, err)
	}
	// 3. AF-merge into the candidate volume key.
	vk := NewSecret(k.KeySize)
	if err := afMerge(vk.Bytes(), split.Bytes(), k.AF.Stripes, k.AF.Hash); err != nil {
		vk.Destroy()
		return nil, fmt.Errorf("unlock keyslot %s: %w", id, err)
	}
	// 4. Check it against the digest.
	ok, err := verifyKey(dig, vk.Bytes())
	if err != nil || !ok {
		vk.Destroy()
		if err == nil {
			err = ErrWrongPassphrase
		}
		return nil, fmt.Errorf("unlock keyslot %s: %w", id, err)
	}
	return vk, nil
}

// cryptArea en- or decrypts keyslot material with the area cipher.
func cryptArea(k *Keyslot, key, buf []byte, encrypt bool) error {
	spec, err := parseCipher(k.Area.Encryption)
	if err != nil {
		return err
	}
	sc, err := newSectorCipher(spec, key)
	if err != nil {
		return err
	}
	return sc.crypt(buf, encrypt)
}

// VerifyVolumeKey reports whether key is this volume's key (the digest of
// segment 0 matches).
func (h *Header) VerifyVolumeKey(key []byte) error {
	_, d, err := h.Meta.digestFor("")
	if err != nil {
		return fmt.Errorf("verify volume key: %w", err)
	}
	ok, err := verifyKey(d, key)
	if err != nil {
		return fmt.Errorf("verify volume key: %w", err)
	}
	if !ok {
		return fmt.Errorf("verify volume key: %w", ErrWrongPassphrase)
	}
	return nil
}

// KeyslotIDs returns the ids of the keyslots in use, ascending.
func (h *Header) KeyslotIDs() []int {
	var ids []int
	for _, id := range sortedIDs(h.Meta.Keyslots) {
		n, _ := strconv.Atoi(id)
		ids = append(ids, n)
	}
	return ids
}
