package verity

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"strings"
)

// Defaults of veritysetup format, used for zero Params fields.
const (
	DefaultHash       = "sha256"
	DefaultBlockSize  = 4096
	DefaultSaltSize   = 32
	MinBlockSize      = 512
	MaxBlockSize      = 65536
	MaxSaltSize       = 256
	SuperblockSize    = 512
	maxLevels         = 63
	superblockAlign   = 512
	superblockVersion = 1
	hashTypeChromeOS  = 0
	hashTypeNormal    = 1
	defaultReadSize   = 2 << 20
	uuidStringLength  = 36
)

// Params selects the tree format. The zero value means the veritysetup
// defaults: sha256, 4096-byte data and hash blocks, hash type 1, a
// superblock, a random 32-byte salt and a random UUID.
type Params struct {
	// Hash is the hash algorithm: "sha256" (default), "sha1" or "sha512".
	Hash string
	// DataBlockSize and HashBlockSize are powers of two in 512..65536;
	// 0 means 4096.
	DataBlockSize uint32
	HashBlockSize uint32
	// ChromeOS selects hash type 0: the salt is hashed after each block
	// instead of before it, and digests are packed without padding.
	ChromeOS bool
	// Salt is the salt; nil means DefaultSaltSize random bytes unless
	// NoSalt is set. At most 256 bytes.
	Salt []byte
	// NoSalt hashes without a salt (veritysetup --salt -).
	NoSalt bool
	// UUID is written to the superblock; the zero UUID means a random one.
	UUID UUID
	// NoSuperblock leaves out the superblock (veritysetup --no-superblock):
	// the tree starts at the hash offset, which must then be a multiple of
	// the hash block size.
	NoSuperblock bool
	// DataBlocks is the number of data blocks to hash; 0 means all whole
	// blocks of the data (a partial last block is ignored, as veritysetup
	// does).
	DataBlocks uint64
	// Rand is the source of the random salt and UUID; nil means crypto/rand.
	Rand io.Reader
}

// algorithm is a supported hash: its name and constructor.
type algorithm struct {
	name string
	size int
	new  func() hash.Hash
}

var algorithms = []algorithm{
	{"sha1", sha1.Size, sha1.New},
	{"sha256", sha256.Size, sha256.New},
	{"sha512", sha512.Size, sha512.New},
}

func lookupHash(name string) (algorithm, error) {
	for _, a := range algorithms {
		if a.name == name {
			return a, nil
		}
	}
	return algorithm{}, fmt.Errorf("hash algorithm %q is not supported (want sha1, sha256 or sha512)", name)
}

// checkBlockSize reports whether n is a power of two in 512..65536.
func checkBlockSize(what string, n uint32) error {
	if n < MinBlockSize || n > MaxBlockSize {
		return fmt.Errorf("%s block size %d is out of range %d..%d", what, n, MinBlockSize, MaxBlockSize)
	}
	if n&(n-1) != 0 {
		return fmt.Errorf("%s block size %d is not a power of two", what, n)
	}
	return nil
}

// withDefaults returns p with its zero fields filled in and every field
// checked; drawRandom then draws the random salt and UUID.
func (p Params) withDefaults() (Params, error) {
	if p.Hash == "" {
		p.Hash = DefaultHash
	}
	if p.DataBlockSize == 0 {
		p.DataBlockSize = DefaultBlockSize
	}
	if p.HashBlockSize == 0 {
		p.HashBlockSize = DefaultBlockSize
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if _, err := lookupHash(p.Hash); err != nil {
		return p, err
	}
	if err := checkBlockSize("data", p.DataBlockSize); err != nil {
		return p, err
	}
	if err := checkBlockSize("hash", p.HashBlockSize); err != nil {
		return p, err
	}
	switch {
	case p.NoSalt && len(p.Salt) > 0:
		return p, fmt.Errorf("check salt: both a salt and no salt given")
	case len(p.Salt) > MaxSaltSize:
		return p, fmt.Errorf("check salt: %d bytes is more than %d", len(p.Salt), MaxSaltSize)
	}
	return p, nil
}

func (p Params) drawRandom() (Params, error) {
	if p.Salt == nil && !p.NoSalt {
		p.Salt = make([]byte, DefaultSaltSize)
		if _, err := io.ReadFull(p.Rand, p.Salt); err != nil {
			return p, fmt.Errorf("generate salt: %w", err)
		}
	}
	if p.NoSuperblock {
		p.UUID = UUID{}
	} else if p.UUID.IsZero() {
		u, err := NewUUID(p.Rand)
		if err != nil {
			return p, err
		}
		p.UUID = u
	}
	return p, nil
}

// UUID is the 16-byte UUID stored in the superblock.
type UUID [16]byte

// NewUUID returns a random (version 4) UUID read from r.
func NewUUID(r io.Reader) (UUID, error) {
	var u UUID
	if _, err := io.ReadFull(r, u[:]); err != nil {
		return u, fmt.Errorf("generate uuid: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u, nil
}

// ParseUUID parses the 36-character form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != uuidStringLength {
		return u, fmt.Errorf("parse uuid %q: length %d, want %d", s, len(s), uuidStringLength)
	}
	for _, i := range []int{8, 13, 18, 23} {
		if s[i] != '-' {
			return u, fmt.Errorf("parse uuid %q: no '-' at position %d", s, i)
		}
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != len(u) {
		return u, fmt.Errorf("parse uuid %q: not hexadecimal", s)
	}
	copy(u[:], b)
	return u, nil
}

// String returns the lowercase 36-character form.
func (u UUID) String() string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsZero reports whether u is all zeros.
func (u UUID) IsZero() bool { return u == UUID{} }

// log2 returns the base-2 logarithm of a power of two.
func log2(n uint32) uint { return uint(bits.TrailingZeros32(n)) }
