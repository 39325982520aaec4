package luks2

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrUnsupported marks a feature of a valid volume that this package does
// not implement (LUKS1, online reencryption, dm-integrity, a hash, cipher
// or KDF it lacks). Errors wrapping it name the feature.
var ErrUnsupported = errors.New("not supported")

// Unsupported returns nil when this package can unlock, map and modify
// the volume, else an error wrapping ErrUnsupported naming the first
// volume-wide feature it does not implement: a mandatory requirement
// (cryptsetup sets "online-reencrypt" while a reencryption is in
// progress), more than one segment, a segment that is not of type
// "crypt", or dm-integrity. Single keyslots it cannot open are reported
// by KeyslotUsable instead; the other keyslots still work.
func (h *Header) Unsupported() error {
	m := h.Meta
	req, err := m.Config.mandatory()
	if err != nil {
		return fmt.Errorf("config requirements: %w", err)
	}
	for _, r := range req {
		what := "mandatory requirement " + strconv.Quote(r)
		if strings.HasPrefix(r, "online-reencrypt") {
			what = "online reencryption in progress (mandatory requirement " + strconv.Quote(r) + ")"
		}
		return fmt.Errorf("%s: %w", what, ErrUnsupported)
	}
	if len(m.Segments) != 1 {
		return fmt.Errorf("%d data segments (a reencryption in progress): %w", len(m.Segments), ErrUnsupported)
	}
	for id, s := range m.Segments {
		switch {
		case s.Type != "crypt":
			return fmt.Errorf("segment %s of type %q: %w", id, s.Type, ErrUnsupported)
		case len(s.Integrity) > 0 && string(s.Integrity) != "null":
			return fmt.Errorf("segment %s: dm-integrity (authenticated encryption, %s): %w", id, integrityType(s.Integrity), ErrUnsupported)
		}
	}
	return nil
}

// integrityType extracts the "type" of a segment's integrity object.
func integrityType(raw []byte) string {
	var i struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &i); err != nil || i.Type == "" {
		return "unknown type"
	}
	return i.Type
}

// KeyslotUsable returns nil when keyslot id can be unlocked by this
// package, else why not: no such keyslot, or an error wrapping
// ErrUnsupported naming what it lacks (keyslot type, anti-forensic
// splitter, area cipher, KDF or hash, the digest's type or hash, or a
// volume-wide feature from Unsupported), or ErrKDFLimit for KDF costs
// beyond this package's limits or the machine's RAM.
func (h *Header) KeyslotUsable(id int) error {
	sid := strconv.Itoa(id)
	k := h.Meta.Keyslots[sid]
	if k == nil {
		return fmt.Errorf("keyslot %d: no such keyslot", id)
	}
	if err := h.Unsupported(); err != nil {
		return fmt.Errorf("keyslot %d: %w", id, err)
	}
	if err := k.usable(); err != nil {
		return fmt.Errorf("keyslot %d: %w", id, err)
	}
	did, d, err := h.Meta.digestFor(sid)
	if err != nil {
		return fmt.Errorf("keyslot %d: no digest: %w", id, ErrUnsupported)
	}
	if err := d.usable(); err != nil {
		return fmt.Errorf("keyslot %d: digest %s: %w", id, did, err)
	}
	return nil
}

// usable reports what of a keyslot this package cannot process.
func (k *Keyslot) usable() error {
	if k.Type != "luks2" {
		what := fmt.Sprintf("type %q", k.Type)
		if k.Type == "reencrypt" {
			what += " (online reencryption)"
		}
		return fmt.Errorf("%s: %w", what, ErrUnsupported)
	}
	if k.AF.Type != "luks1" {
		return fmt.Errorf("anti-forensic splitter %q: %w", k.AF.Type, ErrUnsupported)
	}
	if _, err := hashByName(k.AF.Hash); err != nil {
		return fmt.Errorf("anti-forensic splitter: %w", err)
	}
	if k.Area.Type != "raw" {
		return fmt.Errorf("area type %q: %w", k.Area.Type, ErrUnsupported)
	}
	spec, err := parseCipher(k.Area.Encryption)
	if err != nil {
		return fmt.Errorf("area: %w", err)
	}
	if err := spec.checkKeySize(k.Area.KeySize); err != nil {
		return fmt.Errorf("area: %v: %w", err, ErrUnsupported)
	}
	if err := checkKDF(&k.KDF); err != nil {
		return fmt.Errorf("kdf: %w", err)
	}
	return nil
}

// usable reports what of a digest this package cannot compute.
func (d *Digest) usable() error {
	if d.Type != "pbkdf2" {
		return fmt.Errorf("type %q: %w", d.Type, ErrUnsupported)
	}
	h, err := hashByName(d.Hash)
	if err != nil {
		return err
	}
	if len(d.Digest) > h().Size() {
		return fmt.Errorf("%d-byte digest longer than %s's output", len(d.Digest), d.Hash)
	}
	return nil
}

// checkWritable refuses to modify a header with features this package
// cannot round-trip or keep consistent.
func (h *Header) checkWritable() error {
	if err := h.Unsupported(); err != nil {
		return fmt.Errorf("refusing to modify a volume with %w", err)
	}
	for _, id := range sortedIDs(h.Meta.Keyslots) {
		if t := h.Meta.Keyslots[id].Type; t != "luks2" {
			return fmt.Errorf("refusing to modify a volume with keyslot %s of type %q: %w", id, t, ErrUnsupported)
		}
	}
	return nil
}
