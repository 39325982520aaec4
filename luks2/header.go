package luks2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
)

// Sizes and magics from the LUKS2 specification §2.
const (
	// BinaryHeaderSize is the size of the binary header (spec §2.1).
	BinaryHeaderSize = 4096
	// DefaultMetadataSize is cryptsetup's default size of one header copy
	// (binary header + JSON area).
	DefaultMetadataSize = 16 << 10
	// MaxMetadataSize is the largest valid metadata (header copy) size.
	MaxMetadataSize = 4 << 20
	version2        = 2
)

var (
	magicPrimary   = [6]byte{'L', 'U', 'K', 'S', 0xba, 0xbe}
	magicSecondary = [6]byte{'S', 'K', 'U', 'L', 0xba, 0xbe}
)

// BinaryHeader is the 4096-byte binary LUKS2 header (spec §2.1), fields in
// on-disk order, big-endian.
type BinaryHeader struct {
	Magic        [6]byte  // "LUKS\xba\xbe" (primary) or "SKUL\xba\xbe" (secondary)
	Version      uint16   // 2
	HeaderSize   uint64   // binary header + JSON area, bytes
	SeqID        uint64   // sequence id, bumped on every update
	Label        [48]byte // NUL-terminated label
	ChecksumAlg  [32]byte // NUL-terminated hash name, "sha256"
	Salt         [64]byte // per-copy salt (random)
	UUID         [40]byte // NUL-terminated UUID string
	Subsystem    [48]byte // NUL-terminated subsystem label
	HeaderOffset uint64   // offset of this copy from the device start
	_            [184]byte
	Checksum     [64]byte // checksum of header+JSON with this field zeroed
	_            [7 * 512]byte
}

// checksumOffset is the offset of BinaryHeader.Checksum.
const checksumOffset = 6 + 2 + 8 + 8 + 48 + 32 + 64 + 40 + 48 + 8 + 184

// ValidMetadataSize reports whether n is a valid size of one header copy
// (binary header + JSON area): a power of two from 16 KiB to 4 MiB.
func ValidMetadataSize(n uint64) bool {
	return n >= DefaultMetadataSize && n <= MaxMetadataSize && n&(n-1) == 0
}

// cstring returns the NUL-terminated string in b, or an error when b has no
// terminator.
func cstring(field string, b []byte) (string, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", fmt.Errorf("%s is not NUL-terminated", field)
	}
	return string(b[:i]), nil
}

// setCString stores s NUL-terminated in b.
func setCString(field string, b []byte, s string) error {
	if len(s) >= len(b) || bytes.IndexByte([]byte(s), 0) >= 0 {
		return fmt.Errorf("set %s %q: longer than %d bytes or contains NUL", field, s, len(b)-1)
	}
	clear(b)
	copy(b, s)
	return nil
}

// checksumHash returns the hash named by a header's checksum_alg.
func checksumHash(alg string) (func() hash.Hash, error) {
	h, err := hashByName(alg)
	if err != nil {
		return nil, fmt.Errorf("checksum_alg: %w", err)
	}
	return h, nil
}

// decodeBinary parses and checks the binary header at the start of b
// (spec §2.1): magic, version, size. wantOffset is the position of the
// copy on the device.
func decodeBinary(b []byte, wantMagic [6]byte, wantOffset int64) (*BinaryHeader, error) {
	var h BinaryHeader
	if _, err := binary.Decode(b, binary.BigEndian, &h); err != nil {
		return nil, fmt.Errorf("short binary header: %w", err)
	}
	switch {
	case h.Magic != wantMagic:
		return nil, fmt.Errorf("bad magic %q", h.Magic[:])
	case h.Version != version2:
		return nil, fmt.Errorf("unsupported version %d", h.Version)
	case !ValidMetadataSize(h.HeaderSize):
		return nil, fmt.Errorf("invalid header size %d", h.HeaderSize)
	case h.HeaderOffset != uint64(wantOffset):
		return nil, fmt.Errorf("header offset %d, want %d", h.HeaderOffset, wantOffset)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{"label", h.Label[:]}, {"checksum_alg", h.ChecksumAlg[:]}, {"uuid", h.UUID[:]}, {"subsystem", h.Subsystem[:]}} {
		if _, err := cstring(f.name, f.b); err != nil {
			return nil, err
		}
	}
	return &h, nil
}

// checksum computes the header checksum over area (binary header + JSON
// area) with the checksum field treated as zero (spec §2.2).
func checksum(alg string, area []byte) ([]byte, error) {
	newHash, err := checksumHash(alg)
	if err != nil {
		return nil, err
	}
	h := newHash()
	h.Write(area[:checksumOffset])
	h.Write(make([]byte, 64))
	h.Write(area[checksumOffset+64:])
	return h.Sum(nil), nil
}

// encodeBinary returns the 4096-byte encoding of h.
func encodeBinary(h *BinaryHeader) []byte {
	b, err := binary.Append(make([]byte, 0, BinaryHeaderSize), binary.BigEndian, h)
	if err != nil {
		panic("luks2: encode binary header: " + err.Error()) // fixed-size struct: cannot fail
	}
	return b
}
