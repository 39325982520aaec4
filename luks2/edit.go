package luks2

import (
	"context"
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
	Progress Progress  // PBKDF calibration and derivation; may be nil
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

// AddKey adds a keyslot for pass that stores vk (the volume key), writing
// its material into a free area before the header that refers to it. It
// returns the keyslot id.
func (h *Header) AddKey(d Device, vk []byte, pass []byte, o KeyslotOptions) (int, error) {
	return h.AddKeyContext(context.Background(), d, vk, pass, o)
}

// AddKeyContext is AddKey that stops before writing anything when ctx is
// cancelled during the PBKDF calibration or derivation.
func (h *Header) AddKeyContext(ctx context.Context, d Device, vk []byte, pass []byte, o KeyslotOptions) (int, error) {
	if err := h.checkWritable(); err != nil {
		return -1, fmt.Errorf("add key: %w", err)
	}
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
	k, err := h.writeKeyslot(ctx, d, vk, pass, o)
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

// writeKeyslot builds a keyslot for pass storing vk (newKeyslot) and
// writes its material to a free area, one that no keyslot references
// while the header is unchanged, then syncs.
func (h *Header) writeKeyslot(ctx context.Context, d Device, vk, pass []byte, o KeyslotOptions) (*Keyslot, error) {
	k, material, err := h.newKeyslot(ctx, vk, pass, o)
	if err != nil {
		return nil, err
	}
	defer material.Destroy()
	if err := h.writeArea(d, k, material); err != nil {
		return nil, err
	}
	return k, nil
}

// writeArea writes a keyslot's encrypted material and syncs.
func (h *Header) writeArea(d Device, k *Keyslot, material *Secret) error {
	if err := checkRegion(d, "keyslot area", uint64(k.Area.Offset), uint64(k.Area.Size)); err != nil {
		return err
	}
	if _, err := d.WriteAt(material.Bytes(), int64(k.Area.Offset)); err != nil {
		return fmt.Errorf("write keyslot area at %d: %w", k.Area.Offset, err)
	}
	return syncDev(d)
}

// newKeyslot computes a keyslot for pass storing vk entirely in memory:
// it calibrates the PBKDF, derives the area key, AF-splits vk (4000
// stripes, with the PBKDF's hash like cryptsetup) and encrypts the split material with the segment
// cipher (aes-xts-plain64 when this package cannot use the segment's),
// placed in the first free area. Nothing is written; a cancelled ctx stops
// it with nothing to undo.
func (h *Header) newKeyslot(ctx context.Context, vk, pass []byte, o KeyslotOptions) (*Keyslot, *Secret, error) {
	enc, areaKeySize := h.areaCipher(len(vk))
	kdf, err := o.PBKDF.kdfFor(ctx, areaKeySize, o.Progress)
	if err != nil {
		return nil, nil, err
	}
	kdf.Salt = make([]byte, 32)
	if err := randomBytes(o.Rand, kdf.Salt); err != nil {
		return nil, nil, err
	}
	const stripes = 4000
	size := (afSize(len(vk), stripes) + 4095) &^ 4095
	off, err := h.allocArea(size)
	if err != nil {
		return nil, nil, err
	}
	afHash := o.PBKDF.hash()
	k := &Keyslot{Type: "luks2", KeySize: len(vk), AF: AF{"luks1", stripes, afHash},
		Area: Area{"raw", U64(off), U64(size), enc, areaKeySize}, KDF: kdf, Priority: o.Priority}
	areaKey, err := derive(ctx, &k.KDF, pass, areaKeySize, o.Progress)
	if err != nil {
		return nil, nil, err
	}
	defer areaKey.Destroy()
	split := NewSecret(int(size))
	if err := afSplit(split.Bytes(), vk, stripes, afHash, randReader(o.Rand)); err != nil {
		split.Destroy()
		return nil, nil, err
	}
	if err := cryptArea(k, areaKey.Bytes(), split.Bytes()[:afSize(len(vk), stripes)], true); err != nil {
		split.Destroy()
		return nil, nil, err
	}
	return k, split, nil
}

// areaCipher picks the keyslot area cipher for a volume key of n bytes:
// the segment cipher (as cryptsetup does) when this package implements it
// with an n-byte key, else aes-xts-plain64 with a 512-bit key.
func (h *Header) areaCipher(n int) (string, int) {
	if s := h.Meta.Segments["0"]; s != nil {
		if spec, err := parseCipher(s.Encryption); err == nil && spec.checkKeySize(n) == nil {
			return s.Encryption, n
		}
	}
	return "aes-xts-plain64", 64
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

// KillSlot removes keyslot id in cryptsetup's order: the new metadata
// (without the keyslot, and without it in digests and tokens) is built and
// checked, the keyslot's area is overwritten with random bytes and synced,
// and only then are the headers written. A crash in between leaves a
// header naming a keyslot whose material is gone, never key material that
// no header mentions.
func (h *Header) KillSlot(d Device, id int) error {
	sid := strconv.Itoa(id)
	k := h.Meta.Keyslots[sid]
	if k == nil {
		return fmt.Errorf("kill keyslot %d: no such keyslot", id)
	}
	if err := h.checkWritable(); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	next, err := h.Meta.withoutKeyslot(sid)
	if err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	trial := *h
	trial.Meta = next
	if _, err := trial.encodeBoth(); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	if err := wipeArea(d, k); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	if err := h.commit(d, next); err != nil {
		return fmt.Errorf("kill keyslot %d: %w", id, err)
	}
	return nil
}

// withoutKeyslot returns a copy of m without keyslot sid, in digests and
// tokens too.
func (m *Metadata) withoutKeyslot(sid string) (*Metadata, error) {
	next := m.clone()
	delete(next.Keyslots, sid)
	for _, dg := range next.Digests {
		dg.Keyslots = slices.DeleteFunc(dg.Keyslots, func(s string) bool { return s == sid })
	}
	for tid, raw := range next.Tokens {
		t, err := dropTokenKeyslot(raw, sid)
		if err != nil {
			return nil, fmt.Errorf("token %s: %w", tid, err)
		}
		next.Tokens[tid] = t
	}
	return next, nil
}

// wipeArea overwrites a keyslot's area with random bytes (in bounded
// chunks) and syncs.
func wipeArea(d Device, k *Keyslot) error {
	off, n := uint64(k.Area.Offset), uint64(k.Area.Size)
	if err := checkRegion(d, "keyslot area", off, n); err != nil {
		return err
	}
	if err := fillRegion(d, off, n, true); err != nil {
		return fmt.Errorf("wipe keyslot area: %w", err)
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
