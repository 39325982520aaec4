package luks2

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
)

// KeyslotOptions tunes a new keyslot. The zero value picks the lowest free
// id, cryptsetup's default PBKDF, and the segment cipher for the area.
type KeyslotOptions struct {
	ID       *int      // keyslot id; nil picks the lowest free one
	PBKDF    PBKDF     // key derivation
	Priority *int      // nil: normal
	Rand     io.Reader // randomness, crypto/rand when nil
}

// freeID returns the lowest unused id in m.
func freeID[V any](m map[string]V) (int, error) {
	for i := 0; i <= maxID; i++ {
		if _, used := m[strconv.Itoa(i)]; !used {
			return i, nil
		}
	}
	return -1, fmt.Errorf("all %d ids in use", maxID+1)
}

// allocArea finds the first gap of size bytes in the keyslots area.
func (h *Header) allocArea(size uint64) (uint64, error) {
	type span struct{ off, end uint64 }
	var used []span
	for _, k := range h.Meta.Keyslots {
		used = append(used, span{uint64(k.Area.Offset), uint64(k.Area.Offset + k.Area.Size)})
	}
	sort.Slice(used, func(i, j int) bool { return used[i].off < used[j].off })
	lo := 2 * h.Binary.HeaderSize
	hi := lo + uint64(h.Meta.Config.KeyslotsSize)
	pos := lo
	for _, u := range used {
		if u.off >= pos+size {
			break
		}
		pos = max(pos, u.end)
	}
	if pos+size > hi {
		return 0, fmt.Errorf("no room for a %d-byte keyslot area in the %d-byte keyslots area", size, hi-lo)
	}
	return pos, nil
}

// segmentCipher returns segment 0's cipher and the volume key size.
func (h *Header) segmentCipher() (string, error) {
	s := h.Meta.Segments["0"]
	if s == nil {
		return "", fmt.Errorf("no segment 0")
	}
	return s.Encryption, nil
}

// AddKey adds a keyslot for pass that stores vk (the volume key), writing
// its material into a free area before the header that refers to it. It
// returns the keyslot id.
func (h *Header) AddKey(d Device, vk []byte, pass []byte, o KeyslotOptions) (int, error) {
	if err := h.VerifyVolumeKey(vk); err != nil {
		return -1, fmt.Errorf("add key: %w", err)
	}
	id, err := freeID(h.Meta.Keyslots)
	if o.ID != nil {
		id, err = *o.ID, nil
	}
	if err != nil {
		return -1, fmt.Errorf("add key: %w", err)
	}
	if id < 0 || id > maxID || h.Meta.Keyslots[strconv.Itoa(id)] != nil {
		return -1, fmt.Errorf("add key: keyslot %d is in use or out of range", id)
	}
	sid := strconv.Itoa(id)
	k, err := h.writeKeyslot(d, vk, pass, o)
	if err != nil {
		return -1, fmt.Errorf("add key to keyslot %d: %w", id, err)
	}
	next := h.Meta.clone()
	next.Keyslots[sid] = k
	did, _, err := next.digestFor("")
	if err != nil {
		return -1, fmt.Errorf("add key: %w", err)
	}
	next.Digests[did].Keyslots = append(next.Digests[did].Keyslots, sid)
	if err := h.commit(d, next); err != nil {
		return -1, fmt.Errorf("add key to keyslot %d: %w", id, err)
	}
	return id, nil
}

// writeKeyslot derives an area key for pass, AF-splits and encrypts vk
// and writes it to a free area (one not referenced by any keyslot
// while the header is unchanged), returning the keyslot object.
func (h *Header) writeKeyslot(d Device, vk, pass []byte, o KeyslotOptions) (*Keyslot, error) {
	enc, err := h.segmentCipher()
	if err != nil {
		return nil, err
	}
	spec, err := parseCipher(enc)
	if err != nil {
		return nil, err
	}
	areaKeySize := len(vk)
	if spec.checkKeySize(areaKeySize) != nil {
		areaKeySize = 64
		spec, enc = cipherSpec{"xts", "plain64"}, "aes-xts-plain64"
	}
	kdf, err := o.PBKDF.kdfFor(areaKeySize)
	if err != nil {
		return nil, err
	}
	kdf.Salt = make([]byte, 32)
	if err := randomBytes(o.Rand, kdf.Salt); err != nil {
		return nil, err
	}
	const stripes = 4000
	size := (afSize(len(vk), stripes) + 4095) &^ 4095
	off, err := h.allocArea(size)
	if err != nil {
		return nil, err
	}
	k := &Keyslot{Type: "luks2", KeySize: len(vk), AF: AF{"luks1", stripes, "sha256"},
		Area: Area{"raw", U64(off), U64(size), enc, areaKeySize}, KDF: kdf, Priority: o.Priority}
	areaKey, err := derive(&k.KDF, pass, areaKeySize)
	if err != nil {
		return nil, err
	}
	defer areaKey.Destroy()
	split := NewSecret(int(size))
	defer split.Destroy()
	if err := afSplit(split.Bytes(), vk, stripes, "sha256", randReader(o.Rand)); err != nil {
		return nil, err
	}
	n := afSize(len(vk), stripes)
	if err := cryptArea(k, areaKey.Bytes(), split.Bytes()[:n], true); err != nil {
		return nil, err
	}
	if _, err := d.WriteAt(split.Bytes(), int64(off)); err != nil {
		return nil, fmt.Errorf("write keyslot area at %d: %w", off, err)
	}
	return k, syncDev(d)
}

// commit writes next as the new metadata (both copies) and adopts it.
func (h *Header) commit(d Device, next *Metadata) error {
	prev := h.Meta
	h.Meta = next
	if err := h.Write(d); err != nil {
		h.Meta = prev
		return err
	}
	return nil
}

// KillSlot removes keyslot id from the header (and from digests and
// tokens), then overwrites its area with random bytes.
func (h *Header) KillSlot(d Device, id int) error {
	sid := strconv.Itoa(id)
	k := h.Meta.Keyslots[sid]
	if k == nil {
		return fmt.Errorf("kill keyslot %d: no such keyslot", id)
	}
	next := h.Meta.clone()
	delete(next.Keyslots, sid)
	for _, dg := range next.Digests {
		dg.Keyslots = slices.DeleteFunc(dg.Keyslots, func(s string) bool { return s == sid })
	}
	for tid, raw := range next.Tokens {
		t, err := dropTokenKeyslot(raw, sid)
		if err != nil {
			return fmt.Errorf("kill keyslot %d: token %s: %w", id, tid, err)
		}
		next.Tokens[tid] = t
	}
	if err := h.commit(d, next); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	wipe := make([]byte, k.Area.Size)
	if err := randomBytes(nil, wipe); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	if _, err := d.WriteAt(wipe, int64(k.Area.Offset)); err != nil {
		return fmt.Errorf("kill keyslot %d: wipe area: %w", id, err)
	}
	return syncDev(d)
}

// dropTokenKeyslot removes keyslot sid from a raw token's keyslots array,
// keeping all other fields.
func dropTokenKeyslot(raw json.RawMessage, sid string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	var ks []string
	if err := json.Unmarshal(obj["keyslots"], &ks); err != nil {
		return nil, err
	}
	if !slices.Contains(ks, sid) {
		return raw, nil
	}
	ks = slices.DeleteFunc(ks, func(s string) bool { return s == sid })
	obj["keyslots"], _ = json.Marshal(ks)
	return json.Marshal(obj)
}

// RemoveKey kills the keyslot the passphrase opens.
func (h *Header) RemoveKey(d Device, pass []byte) (int, error) {
	vk, id, err := h.Unlock(d, pass)
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
	vk, id, err := h.Unlock(d, old)
	if err != nil {
		return -1, fmt.Errorf("change key: %w", err)
	}
	defer vk.Destroy()
	sid := strconv.Itoa(id)
	prev := h.Meta.Keyslots[sid]
	if o.Priority == nil {
		o.Priority = prev.Priority
	}
	k, err := h.writeKeyslot(d, vk.Bytes(), pass, o)
	if err != nil {
		return -1, fmt.Errorf("change key of keyslot %d: %w", id, err)
	}
	next := h.Meta.clone()
	next.Keyslots[sid] = k
	if err := h.commit(d, next); err != nil {
		return -1, fmt.Errorf("change key of keyslot %d: %w", id, err)
	}
	wipe := make([]byte, prev.Area.Size)
	if err := randomBytes(nil, wipe); err == nil {
		_, err = d.WriteAt(wipe, int64(prev.Area.Offset))
	}
	return id, err
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
