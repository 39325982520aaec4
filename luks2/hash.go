package luks2

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"fmt"
	"hash"
	"sort"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // LUKS volumes made with --hash ripemd160 exist
)

// hashes are the hash functions usable in af.hash, kdf.hash (pbkdf2) and
// the digest hash, under cryptsetup's names: everything the Go standard
// library and golang.org/x/crypto provide. cryptsetup also knows
// whirlpool, sm3 and stribog256/512 (through OpenSSL or gcrypt); keyslots
// using them are reported unusable, the rest of the volume still works.
var hashes = map[string]func() hash.Hash{
	"sha1":        sha1.New,
	"sha224":      sha256.New224,
	"sha256":      sha256.New,
	"sha384":      sha512.New384,
	"sha512":      sha512.New,
	"sha512-224":  sha512.New512_224,
	"sha512-256":  sha512.New512_256,
	"sha3-224":    func() hash.Hash { return sha3.New224() },
	"sha3-256":    func() hash.Hash { return sha3.New256() },
	"sha3-384":    func() hash.Hash { return sha3.New384() },
	"sha3-512":    func() hash.Hash { return sha3.New512() },
	"blake2b-160": blake2bSize(20),
	"blake2b-256": blake2bSize(32),
	"blake2b-384": blake2bSize(48),
	"blake2b-512": blake2bSize(64),
	"blake2s-256": func() hash.Hash { h, _ := blake2s.New256(nil); return h },
	"ripemd160":   ripemd160.New,
}

func blake2bSize(n int) func() hash.Hash {
	return func() hash.Hash { h, _ := blake2b.New(n, nil); return h }
}

// SupportedHashes returns the hash names this package can use, sorted.
func SupportedHashes() []string {
	names := make([]string, 0, len(hashes))
	for n := range hashes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// hashByName returns the hash LUKS2 names in af.hash, kdf.hash and the
// digest hash.
func hashByName(name string) (func() hash.Hash, error) {
	if h, ok := hashes[strings.ToLower(name)]; ok {
		return h, nil
	}
	return nil, fmt.Errorf("hash %q: %w", name, ErrUnsupported)
}
