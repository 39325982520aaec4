package luks2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
)

// MaxKeyslotsSize is cryptsetup's largest keyslots area (LUKS2_MAX_KEYSLOTS_SIZE).
const MaxKeyslotsSize = 128 << 20

// validate checks the structure of the metadata of a header copy of size
// hdrSize against the specification (§3) and cryptsetup's limits, so that
// no size, offset or count taken from it is out of bounds. Features this
// package does not implement (unknown hashes, ciphers, KDFs, keyslot types,
// dm-integrity, reencryption) are not errors here: Header.Unsupported and
// Header.KeyslotUsable report them. It never allocates in proportion to
// untrusted numbers.
func (m *Metadata) validate(hdrSize uint64) error {
	if err := m.validateConfig(hdrSize); err != nil {
		return err
	}
	if len(m.Segments) == 0 {
		return fmt.Errorf("segments: none")
	}
	for id, s := range m.Segments {
		if err := s.validate(id); err != nil {
			return err
		}
	}
	for id, k := range m.Keyslots {
		if err := k.validate(id, hdrSize, uint64(m.Config.KeyslotsSize)); err != nil {
			return err
		}
	}
	if err := m.checkOverlaps(); err != nil {
		return err
	}
	for id, d := range m.Digests {
		if err := m.validateDigest(id, d); err != nil {
			return err
		}
	}
	for id, raw := range m.Tokens {
		if _, err := m.parseToken(id, raw); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metadata) validateConfig(hdrSize uint64) error {
	c := &m.Config
	switch {
	case uint64(c.JSONSize) != hdrSize-BinaryHeaderSize:
		return fmt.Errorf("config: json_size %d, want %d", c.JSONSize, hdrSize-BinaryHeaderSize)
	case c.KeyslotsSize%4096 != 0:
		return fmt.Errorf("config: keyslots_size %d is not a multiple of 4096", c.KeyslotsSize)
	case c.KeyslotsSize > MaxKeyslotsSize:
		return fmt.Errorf("config: keyslots_size %d exceeds cryptsetup's maximum %d (128 MiB)", c.KeyslotsSize, MaxKeyslotsSize)
	}
	if len(c.Requirements) > 0 {
		if _, err := c.mandatory(); err != nil {
			return fmt.Errorf("config: requirements: %w", err)
		}
	}
	return nil
}

// mandatory returns the config's mandatory requirements.
func (c *Config) mandatory() ([]string, error) {
	if len(c.Requirements) == 0 {
		return nil, nil
	}
	var r struct {
		Mandatory []string `json:"mandatory"`
	}
	if err := json.Unmarshal(c.Requirements, &r); err != nil {
		return nil, err
	}
	return r.Mandatory, nil
}

// cipherRE is what a dm-crypt cipher specification may contain: it ends up
// in a device-mapper table line, where a space would add parameters.
var cipherRE = regexp.MustCompile(`^[A-Za-z0-9_:.()+-]{1,64}$`)

func (s *Segment) validate(id string) error {
	if s == nil {
		return fmt.Errorf("segment %s: null", id)
	}
	if _, err := parseID("segment", id); err != nil {
		return err
	}
	switch {
	case s.Type == "":
		return fmt.Errorf("segment %s: missing type", id)
	case s.Type == "crypt" && !cipherRE.MatchString(s.Encryption):
		return fmt.Errorf("segment %s: malformed encryption %q", id, s.Encryption)
	case s.Type == "crypt" && s.SectorSize != 512 && s.SectorSize != 1024 && s.SectorSize != 2048 && s.SectorSize != 4096:
		return fmt.Errorf("segment %s: invalid sector_size %d", id, s.SectorSize)
	case s.SectorSize > 0 && uint64(s.Offset)%uint64(s.SectorSize) != 0:
		return fmt.Errorf("segment %s: offset %d is not sector aligned", id, s.Offset)
	}
	if s.Size != "dynamic" {
		n, err := parseU64(s.Size)
		if err != nil {
			return fmt.Errorf("segment %s: size: %w", id, err)
		}
		if (s.SectorSize > 0 && n%uint64(s.SectorSize) != 0) || uint64(s.Offset)+n < n {
			return fmt.Errorf("segment %s: size %d not sector aligned or overflowing", id, n)
		}
	}
	return nil
}

// afSize is the size of the AF-split material of a keyslot rounded up to
// whole 512-byte sectors.
func afSize(keySize, stripes int) uint64 {
	n := uint64(keySize) * uint64(stripes)
	return (n + sectorSize512 - 1) &^ (sectorSize512 - 1)
}

func (k *Keyslot) validate(id string, hdrSize, keyslotsSize uint64) error {
	if k == nil {
		return fmt.Errorf("keyslot %s: null", id)
	}
	if _, err := parseID("keyslot", id); err != nil {
		return err
	}
	a := &k.Area
	lo, hi := 2*hdrSize, 2*hdrSize+keyslotsSize
	switch {
	case k.Type == "":
		return fmt.Errorf("keyslot %s: missing type", id)
	case k.Priority != nil && (*k.Priority < 0 || *k.Priority > 2):
		return fmt.Errorf("keyslot %s: priority %d not in 0..2", id, *k.Priority)
	case a.Offset%sectorSize512 != 0 || a.Size%sectorSize512 != 0:
		return fmt.Errorf("keyslot %s: area offset %d or size %d not sector aligned", id, a.Offset, a.Size)
	case uint64(a.Offset) < lo || uint64(a.Offset) > hi || uint64(a.Size) > hi-uint64(a.Offset):
		return fmt.Errorf("keyslot %s: area [%d, +%d) outside the keyslots area [%d, %d)", id, a.Offset, a.Size, lo, hi)
	case k.Type != "luks2":
		return nil // other keyslot types: only the area matters here
	case k.KeySize < 1 || k.KeySize > 256:
		return fmt.Errorf("keyslot %s: key_size %d out of range", id, k.KeySize)
	case k.AF.Stripes < 1 || k.AF.Stripes > 65536:
		return fmt.Errorf("keyslot %s: af stripes %d out of range", id, k.AF.Stripes)
	case uint64(a.Size) < afSize(k.KeySize, k.AF.Stripes):
		return fmt.Errorf("keyslot %s: area size %d smaller than the %d-byte split key", id, a.Size, afSize(k.KeySize, k.AF.Stripes))
	case len(k.KDF.Salt) == 0:
		return fmt.Errorf("keyslot %s: kdf: empty salt", id)
	}
	return nil
}

// checkOverlaps rejects keyslot areas that overlap each other.
func (m *Metadata) checkOverlaps() error {
	ids := sortedIDs(m.Keyslots)
	sort.Slice(ids, func(i, j int) bool { return m.Keyslots[ids[i]].Area.Offset < m.Keyslots[ids[j]].Area.Offset })
	for i := 1; i < len(ids); i++ {
		prev, cur := m.Keyslots[ids[i-1]].Area, m.Keyslots[ids[i]].Area
		if uint64(prev.Offset)+uint64(prev.Size) > uint64(cur.Offset) {
			return fmt.Errorf("keyslot %s: area overlaps keyslot %s", ids[i], ids[i-1])
		}
	}
	return nil
}

func (m *Metadata) validateDigest(id string, d *Digest) error {
	if d == nil {
		return fmt.Errorf("digest %s: null", id)
	}
	if _, err := parseID("digest", id); err != nil {
		return err
	}
	switch {
	case d.Type == "":
		return fmt.Errorf("digest %s: missing type", id)
	case d.Type == "pbkdf2" && (d.Iterations < 1 || d.Iterations > 1<<32-1):
		return fmt.Errorf("digest %s: iterations %d out of range", id, d.Iterations)
	case d.Type == "pbkdf2" && (len(d.Salt) == 0 || len(d.Digest) == 0 || len(d.Digest) > 64):
		return fmt.Errorf("digest %s: bad salt or digest length", id)
	}
	for _, k := range d.Keyslots {
		if m.Keyslots[k] == nil {
			return fmt.Errorf("digest %s: references missing keyslot %q", id, k)
		}
	}
	for _, s := range d.Segments {
		if m.Segments[s] == nil {
			return fmt.Errorf("digest %s: references missing segment %q", id, s)
		}
	}
	return nil
}

// Token is the part of a token object every token type has (spec §3.3).
type Token struct {
	Type     string   `json:"type"`
	Keyslots []string `json:"keyslots"`
}

// parseToken checks a raw token: a JSON object with a string "type" and
// a "keyslots" array of existing keyslot ids.
func (m *Metadata) parseToken(id string, raw json.RawMessage) (*Token, error) {
	if _, err := parseID("token", id); err != nil {
		return nil, err
	}
	var t Token
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("token %s: %w", id, err)
	}
	if t.Type == "" {
		return nil, fmt.Errorf("token %s: missing type", id)
	}
	if t.Keyslots == nil {
		return nil, fmt.Errorf("token %s: missing keyslots", id)
	}
	for _, k := range t.Keyslots {
		if m.Keyslots[k] == nil {
			return nil, fmt.Errorf("token %s: references missing keyslot %q", id, k)
		}
	}
	return &t, nil
}

// sortedIDs returns the keys of an id-keyed map in numeric order.
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if len(ids[i]) != len(ids[j]) {
			return len(ids[i]) < len(ids[j])
		}
		return ids[i] < ids[j]
	})
	return ids
}
