package verity

import (
	"encoding/hex"
	"fmt"
	"math"
)

// Result describes a hash tree: everything needed to verify it or to
// map it with device-mapper. Format returns one; Open rebuilds one from a
// superblock (or Params) and a root hash.
type Result struct {
	// HashType is 1 (normal) or 0 (Chrome OS).
	HashType uint32
	// Hash is the algorithm name: "sha1", "sha256" or "sha512".
	Hash string
	// DataBlockSize and HashBlockSize are in bytes.
	DataBlockSize uint32
	HashBlockSize uint32
	// DataBlocks is the number of hashed data blocks.
	DataBlocks uint64
	// HashOffset is the byte offset of the superblock (or, without one,
	// of the tree) on the hash device.
	HashOffset int64
	// HashStartBlock is the first tree block on the hash device, in hash
	// blocks: the <hash_start_block> table parameter.
	HashStartBlock uint64
	// HashBlocks is the number of tree blocks (the superblock excluded).
	HashBlocks uint64
	// Levels holds the tree levels, Levels[0] the leaf level (digests of
	// the data blocks), the last one the top level of one block. It is
	// empty for a single data block: the root hash is then its digest.
	Levels []Level
	// Salt is the salt (empty: none).
	Salt []byte
	// UUID is the superblock UUID (zero without a superblock).
	UUID UUID
	// Superblock reports whether a superblock precedes the tree.
	Superblock bool
	// RootHash is the digest of the top level's block.
	RootHash []byte

	alg algorithm
}

// Level is one level of the tree.
type Level struct {
	// Start is the level's first block on the hash device, in hash blocks.
	Start uint64
	// Blocks is the number of hash blocks in the level.
	Blocks uint64
}

// NewResult describes the tree of dataBlocks data blocks formatted with p
// (nothing random is drawn: a nil Salt means no salt) at hashOffset, with the given root hash (may be nil).
func NewResult(p Params, dataBlocks uint64, hashOffset int64, rootHash []byte) (*Result, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	if p.NoSuperblock {
		p.UUID = UUID{}
	}
	return newResult(p, dataBlocks, hashOffset, rootHash)
}

// newResult computes the tree layout for checked params.
func newResult(p Params, dataBlocks uint64, hashOffset int64, rootHash []byte) (*Result, error) {
	alg, _ := lookupHash(p.Hash)
	r := &Result{
		HashType: hashTypeNormal, Hash: alg.name, alg: alg,
		DataBlockSize: p.DataBlockSize, HashBlockSize: p.HashBlockSize,
		DataBlocks: dataBlocks, HashOffset: hashOffset,
		Salt: append([]byte{}, p.Salt...), UUID: p.UUID,
		Superblock: !p.NoSuperblock, RootHash: rootHash,
	}
	if p.ChromeOS {
		r.HashType = hashTypeChromeOS
	}
	if rootHash != nil && len(rootHash) != alg.size {
		return nil, fmt.Errorf("check root hash: %d bytes, want %d for %s", len(rootHash), alg.size, alg.name)
	}
	if err := r.layout(); err != nil {
		return nil, err
	}
	return r, nil
}

// layout computes HashStartBlock, Levels and HashBlocks, following
// cryptsetup's VERITY_hash_offset_block and hash_levels.
func (r *Result) layout() error {
	hbs := int64(r.HashBlockSize)
	if r.DataBlocks == 0 {
		return fmt.Errorf("check data: no whole %d-byte data block", r.DataBlockSize)
	}
	if r.DataBlocks > math.MaxInt64/uint64(r.DataBlockSize) {
		return fmt.Errorf("check data: %d data blocks is too many", r.DataBlocks)
	}
	switch {
	case r.HashOffset < 0:
		return fmt.Errorf("check hash offset %d: negative", r.HashOffset)
	case r.HashOffset > math.MaxInt64/2:
		return fmt.Errorf("check hash offset %d: too large", r.HashOffset)
	case r.Superblock && r.HashOffset%superblockAlign != 0:
		return fmt.Errorf("check hash offset %d: not a multiple of %d", r.HashOffset, superblockAlign)
	case !r.Superblock && r.HashOffset%hbs != 0:
		return fmt.Errorf("check hash offset %d: not a multiple of the hash block size %d (no superblock)", r.HashOffset, hbs)
	}
	// 1. The tree starts at the first hash block after the superblock.
	r.HashStartBlock = uint64(r.HashOffset / hbs)
	if r.Superblock {
		r.HashStartBlock = uint64((r.HashOffset + SuperblockSize + hbs - 1) / hbs)
	}
	// 2. Count the levels: one more while the remaining blocks do not fit
	//    in a single hash block.
	bitsPer := r.hashPerBlockBits()
	n := 0
	for bitsPer*uint(n) < 64 && (r.DataBlocks-1)>>(bitsPer*uint(n)) != 0 {
		n++
	}
	if n > maxLevels {
		return fmt.Errorf("check data: %d levels is too many", n)
	}
	// 3. Place the levels top level first; level i holds one digest per
	//    block of level i-1 (data blocks for the leaf level 0).
	r.Levels = make([]Level, n)
	pos := r.HashStartBlock
	for i := n - 1; i >= 0; i-- {
		shift := bitsPer * uint(i+1)
		blocks := uint64(1)
		if shift < 64 {
			blocks = (r.DataBlocks-1)>>shift + 1
		}
		r.Levels[i] = Level{Start: pos, Blocks: blocks}
		pos += blocks
	}
	r.HashBlocks = pos - r.HashStartBlock
	if pos > math.MaxInt64/uint64(hbs) {
		return fmt.Errorf("check data: hash area of %d blocks is too large", pos)
	}
	return nil
}

// hashPerBlockBits is log2 of the digests per hash block, rounded down to a
// power of two as the kernel does.
func (r *Result) hashPerBlockBits() uint {
	per := r.HashBlockSize / uint32(r.alg.size)
	b := uint(0)
	for per > 1 {
		per >>= 1
		b++
	}
	return b
}

// slotSize is the bytes one digest occupies in a hash block: a power of two
// for hash type 1, the digest itself for hash type 0.
func (r *Result) slotSize() int {
	if r.HashType == hashTypeChromeOS {
		return r.alg.size
	}
	return int(r.HashBlockSize >> r.hashPerBlockBits())
}

// DataSize is the size of the hashed data in bytes.
func (r *Result) DataSize() int64 { return int64(r.DataBlocks) * int64(r.DataBlockSize) }

// DataSectors is the size of the hashed data in 512-byte sectors, the
// length of the device-mapper target.
func (r *Result) DataSectors() uint64 { return uint64(r.DataSize()) / 512 }

// HashEnd is the byte offset just past the tree on the hash device; the
// hash device (or file) must be at least this big.
func (r *Result) HashEnd() int64 {
	return int64(r.HashStartBlock+r.HashBlocks) * int64(r.HashBlockSize)
}

// RootHashHex is the root hash in lowercase hex.
func (r *Result) RootHashHex() string { return hex.EncodeToString(r.RootHash) }

// SaltHex is the salt in lowercase hex, or "-" for none (the table form).
func (r *Result) SaltHex() string {
	if len(r.Salt) == 0 {
		return "-"
	}
	return hex.EncodeToString(r.Salt)
}

// Params returns the parameters that reproduce this tree.
func (r *Result) Params() Params {
	return Params{
		Hash: r.Hash, DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize,
		ChromeOS: r.HashType == hashTypeChromeOS, Salt: append([]byte{}, r.Salt...),
		NoSalt: len(r.Salt) == 0, UUID: r.UUID, NoSuperblock: !r.Superblock,
		DataBlocks: r.DataBlocks,
	}
}
