package luks2

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"golang.org/x/crypto/xts"
)

// sectorSize512 is the sector size of keyslot area encryption.
const sectorSize512 = 512

// cipherSpec is a parsed dm-crypt cipher specification "aes-MODE-IV".
type cipherSpec struct {
	mode string // "xts" or "cbc"
	iv   string // "plain", "plain64" or "essiv:sha256"
}

// Ciphers lists the dm-crypt cipher specifications this package can
// encrypt keyslots with, and create volumes with.
var Ciphers = []string{"aes-xts-plain64", "aes-xts-plain", "aes-cbc-plain64", "aes-cbc-plain", "aes-cbc-essiv:sha256"}

// parseCipher parses the cipher specs this package can encrypt keyslots
// with (Ciphers).
func parseCipher(s string) (cipherSpec, error) {
	parts := strings.SplitN(s, "-", 3)
	if len(parts) == 3 && parts[0] == "aes" {
		c := cipherSpec{mode: parts[1], iv: parts[2]}
		switch {
		case c.mode == "xts" && (c.iv == "plain64" || c.iv == "plain"):
			return c, nil
		case c.mode == "cbc" && (c.iv == "plain64" || c.iv == "plain" || c.iv == "essiv:sha256"):
			return c, nil
		}
	}
	return cipherSpec{}, fmt.Errorf("cipher %q: %w (supported: %s)", s, ErrUnsupported, strings.Join(Ciphers, ", "))
}

// checkKeySize reports whether n bytes is a valid key size for c.
func (c cipherSpec) checkKeySize(n int) error {
	ok := n == 16 || n == 24 || n == 32
	if c.mode == "xts" {
		ok = n == 32 || n == 64
	}
	if !ok {
		return fmt.Errorf("invalid key size %d bits for aes-%s", n*8, c.mode)
	}
	return nil
}

// sectorCipher encrypts 512-byte sectors; sector numbers start at 0.
type sectorCipher struct {
	spec  cipherSpec
	xts   *xts.Cipher
	block cipher.Block // cbc
	essiv cipher.Block // essiv IV generator
}

func newSectorCipher(spec cipherSpec, key []byte) (*sectorCipher, error) {
	if err := spec.checkKeySize(len(key)); err != nil {
		return nil, err
	}
	sc := &sectorCipher{spec: spec}
	var err error
	if spec.mode == "xts" {
		sc.xts, err = xts.NewCipher(aes.NewCipher, key)
		return sc, err
	}
	if sc.block, err = aes.NewCipher(key); err != nil {
		return nil, err
	}
	if spec.iv == "essiv:sha256" {
		salt := sha256.Sum256(key)
		sc.essiv, err = aes.NewCipher(salt[:])
		clear(salt[:])
	}
	return sc, err
}

// iv returns the CBC IV of a sector: its number little-endian (plain: 32
// bits, plain64: 64 bits), or for essiv that block encrypted with the
// hashed key.
func (sc *sectorCipher) iv(sector uint64) []byte {
	iv := make([]byte, aes.BlockSize)
	if sc.spec.iv == "plain" {
		sector &= 0xffffffff
	}
	binary.LittleEndian.PutUint64(iv, sector)
	if sc.essiv != nil {
		sc.essiv.Encrypt(iv, iv)
	}
	return iv
}

// crypt en- or decrypts buf (a multiple of 512 bytes) in place, sector i
// of buf having number i.
func (sc *sectorCipher) crypt(buf []byte, encrypt bool) error {
	if len(buf)%sectorSize512 != 0 {
		return fmt.Errorf("crypt: %d bytes is not a multiple of %d", len(buf), sectorSize512)
	}
	for i := 0; i*sectorSize512 < len(buf); i++ {
		s := buf[i*sectorSize512 : (i+1)*sectorSize512]
		n := uint64(i)
		switch {
		case sc.xts != nil && encrypt:
			sc.xts.Encrypt(s, s, n&sc.ivMask())
		case sc.xts != nil:
			sc.xts.Decrypt(s, s, n&sc.ivMask())
		case encrypt:
			cipher.NewCBCEncrypter(sc.block, sc.iv(n)).CryptBlocks(s, s)
		default:
			cipher.NewCBCDecrypter(sc.block, sc.iv(n)).CryptBlocks(s, s)
		}
	}
	return nil
}

func (sc *sectorCipher) ivMask() uint64 {
	if sc.spec.iv == "plain" {
		return 0xffffffff
	}
	return ^uint64(0)
}
