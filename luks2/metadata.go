package luks2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Metadata is the LUKS2 JSON metadata (spec §3). Object keys of keyslots,
// tokens, segments and digests are decimal ids ("0".."31").
type Metadata struct {
	Keyslots map[string]*Keyslot        `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]*Segment        `json:"segments"`
	Digests  map[string]*Digest         `json:"digests"`
	Config   Config                     `json:"config"`
}

// Keyslot is one keyslot object (spec §3.2).
type Keyslot struct {
	Type     string `json:"type"`               // "luks2"
	KeySize  int    `json:"key_size"`           // volume key size, bytes
	AF       AF     `json:"af"`                 // anti-forensic splitter
	Area     Area   `json:"area"`               // where the split key lives
	KDF      KDF    `json:"kdf"`                // passphrase -> area key
	Priority *int   `json:"priority,omitempty"` // 0 ignore, 1 normal (default), 2 high
}

// AF describes the anti-forensic splitter of a keyslot (spec §3.2.1).
type AF struct {
	Type    string `json:"type"`    // "luks1"
	Stripes int    `json:"stripes"` // 4000
	Hash    string `json:"hash"`    // "sha256"
}

// Area is the keyslot area holding the encrypted, AF-split volume key
// (spec §3.2.2).
type Area struct {
	Type       string `json:"type"` // "raw"
	Offset     U64    `json:"offset"`
	Size       U64    `json:"size"`
	Encryption string `json:"encryption"` // dm-crypt cipher spec, "aes-xts-plain64"
	KeySize    int    `json:"key_size"`   // area key size, bytes
}

// KDF is a keyslot's key derivation function (spec §3.2.3): pbkdf2 uses
// Hash and Iterations; argon2i/argon2id use Time, Memory (KiB) and CPUs.
type KDF struct {
	Type       string `json:"type"`
	Hash       string `json:"hash,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	Time       int    `json:"time,omitempty"`
	Memory     int    `json:"memory,omitempty"`
	CPUs       int    `json:"cpus,omitempty"`
	Salt       []byte `json:"salt"`
}

// Segment is a data segment (spec §3.4). Size is a decimal byte count or
// "dynamic" (up to the device end).
type Segment struct {
	Type       string          `json:"type"` // "crypt"
	Offset     U64             `json:"offset"`
	Size       string          `json:"size"`
	IVTweak    U64             `json:"iv_tweak"`
	Encryption string          `json:"encryption"`
	SectorSize int             `json:"sector_size"`
	Integrity  json.RawMessage `json:"integrity,omitempty"`
	Flags      []string        `json:"flags,omitempty"`
}

// Digest verifies a volume key (spec §3.5): pbkdf2(key, salt, iterations).
type Digest struct {
	Type       string   `json:"type"` // "pbkdf2"
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       []byte   `json:"salt"`
	Digest     []byte   `json:"digest"`
}

// Config is the config object (spec §3.6).
type Config struct {
	JSONSize     U64             `json:"json_size"`
	KeyslotsSize U64             `json:"keyslots_size"`
	Flags        []string        `json:"flags,omitempty"`
	Requirements json.RawMessage `json:"requirements,omitempty"`
}

// U64 is a 64-bit unsigned number that LUKS2 encodes as a JSON string of
// decimal digits ("16777216").
type U64 uint64

// MarshalJSON encodes u as a decimal string.
func (u U64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatUint(uint64(u), 10) + `"`), nil
}

// UnmarshalJSON accepts only a string of decimal digits that fits 64 bits.
func (u *U64) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a decimal string, got %s", b)
	}
	v, err := parseU64(s)
	if err != nil {
		return err
	}
	*u = U64(v)
	return nil
}

func parseU64(s string) (uint64, error) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid number %q: %w", s, err)
	}
	return v, nil
}

// maxID is the largest keyslot/token/segment/digest id (32 objects).
const maxID = 31

// parseID checks an object id ("0".."31").
func parseID(kind, s string) (int, error) {
	v, err := parseU64(s)
	if err != nil || v > maxID || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("invalid %s id %q", kind, s)
	}
	return int(v), nil
}

// decodeMetadata parses the NUL-terminated JSON in area strictly.
func decodeMetadata(area []byte) (*Metadata, error) {
	end := bytes.IndexByte(area, 0)
	if end < 0 {
		return nil, fmt.Errorf("json area is not NUL-terminated")
	}
	dec := json.NewDecoder(bytes.NewReader(area[:end]))
	var m Metadata
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse json: trailing data")
	}
	return &m, nil
}

// encodeMetadata serializes m into a JSON area of size n (NUL padded).
func encodeMetadata(m *Metadata, n int) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) >= n {
		return nil, fmt.Errorf("encode json: %d bytes do not fit the %d-byte json area", len(b), n)
	}
	area := make([]byte, n)
	copy(area, b)
	return area, nil
}

// clone returns a deep copy of m (through JSON).
func (m *Metadata) clone() *Metadata {
	b, err := json.Marshal(m)
	if err != nil {
		panic("luks2: clone metadata: " + err.Error())
	}
	var c Metadata
	if err := json.Unmarshal(b, &c); err != nil {
		panic("luks2: clone metadata: " + err.Error())
	}
	return &c
}
