package luks2

import (
	"encoding/binary"
	"fmt"
	"hash"
	"io"
)

// diffuse implements the LUKS1 specification's diffusion function H on buf
// in place: buf is cut into digest-sized blocks, and block i becomes
// hash(be32(i) || block i), truncated for a short last block.
func diffuse(newHash func() hash.Hash, buf []byte) {
	h := newHash()
	ds := h.Size()
	var iv [4]byte
	sum := make([]byte, 0, ds)
	for i := 0; i*ds < len(buf); i++ {
		block := buf[i*ds : min((i+1)*ds, len(buf))]
		h.Reset()
		binary.BigEndian.PutUint32(iv[:], uint32(i))
		h.Write(iv[:])
		h.Write(block)
		sum = h.Sum(sum[:0])
		copy(block, sum)
	}
	clear(sum)
}

// afSplit splits key into stripes*len(key) bytes of material written to
// dst (random stripes from rand, crypto/rand when nil), following the LUKS1 specification's AFsplit:
//  1. d = 0 (len(key) bytes);
//  2. for each stripe s_i, i < stripes-1: s_i = random, d = H(d XOR s_i);
//  3. the last stripe s_{n-1} = d XOR key.
func afSplit(dst, key []byte, stripes int, hashName string, rand io.Reader) error {
	newHash, err := hashByName(hashName)
	if err != nil {
		return fmt.Errorf("af split: %w", err)
	}
	n := len(key)
	if stripes < 1 || len(dst) < n*stripes {
		return fmt.Errorf("af split: %d-byte buffer too small for %d stripes of %d bytes", len(dst), stripes, n)
	}
	d := make([]byte, n) // step 1
	defer clear(d)
	for i := 0; i < stripes-1; i++ { // step 2
		s := dst[i*n : (i+1)*n]
		if _, err := io.ReadFull(randReader(rand), s); err != nil {
			return fmt.Errorf("af split: random stripe: %w", err)
		}
		xorInto(d, s)
		diffuse(newHash, d)
	}
	last := dst[(stripes-1)*n : stripes*n] // step 3
	for j := range last {
		last[j] = d[j] ^ key[j]
	}
	return nil
}

// afMerge recovers the key from split material (LUKS1 AFmerge): d = 0;
// d = H(d XOR s_i) for i < stripes-1; key = d XOR s_{n-1}.
func afMerge(key, src []byte, stripes int, hashName string) error {
	newHash, err := hashByName(hashName)
	if err != nil {
		return fmt.Errorf("af merge: %w", err)
	}
	n := len(key)
	if stripes < 1 || len(src) < n*stripes {
		return fmt.Errorf("af merge: %d bytes too short for %d stripes of %d bytes", len(src), stripes, n)
	}
	clear(key)
	for i := 0; i < stripes-1; i++ {
		xorInto(key, src[i*n:(i+1)*n])
		diffuse(newHash, key)
	}
	xorInto(key, src[(stripes-1)*n:stripes*n])
	return nil
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}
