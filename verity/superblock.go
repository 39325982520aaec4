package verity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// magic is the superblock signature.
var magic = [8]byte{'v', 'e', 'r', 'i', 't', 'y', 0, 0}

// Superblock is the 512-byte version 1 superblock cryptsetup writes at the
// hash offset (cryptsetup lib/verity/verity.c, struct verity_sb), all
// integers little-endian.
type Superblock struct {
	Signature     [8]byte  // "verity\0\0"
	Version       uint32   // 1
	HashType      uint32   // 1 normal, 0 Chrome OS
	UUID          UUID     // UUID of the hash device
	Algorithm     [32]byte // hash name, NUL-terminated
	DataBlockSize uint32   // bytes
	HashBlockSize uint32   // bytes
	DataBlocks    uint64   // number of data blocks
	SaltSize      uint16   // bytes used in Salt
	_             [6]byte
	Salt          [256]byte
	_             [168]byte
}

// ReadSuperblock reads and checks the superblock at byte offset off of r.
func ReadSuperblock(r io.ReaderAt, off int64) (*Superblock, error) {
	buf := make([]byte, SuperblockSize)
	if n, err := r.ReadAt(buf, off); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read verity superblock at offset %d: %w", off, err)
	}
	sb := new(Superblock)
	if err := sb.UnmarshalBinary(buf); err != nil {
		return nil, fmt.Errorf("read verity superblock at offset %d: %w", off, err)
	}
	return sb, nil
}

// UnmarshalBinary decodes a 512-byte superblock and checks every field.
func (sb *Superblock) UnmarshalBinary(b []byte) error {
	if len(b) < SuperblockSize {
		return fmt.Errorf("decode superblock: %d bytes, want %d", len(b), SuperblockSize)
	}
	if _, err := binary.Decode(b[:SuperblockSize], binary.LittleEndian, sb); err != nil {
		return fmt.Errorf("decode superblock: %w", err)
	}
	return sb.check()
}

// MarshalBinary encodes the superblock into 512 bytes.
func (sb *Superblock) MarshalBinary() ([]byte, error) {
	return binary.Append(make([]byte, 0, SuperblockSize), binary.LittleEndian, sb)
}

// check validates the fields in on-disk order; each failure has its own
// message.
func (sb *Superblock) check() error {
	switch {
	case sb.Signature != magic:
		return fmt.Errorf("check superblock: bad magic %q, want %q", sb.Signature[:], magic[:])
	case sb.Version != superblockVersion:
		return fmt.Errorf("check superblock: unsupported version %d, want %d", sb.Version, superblockVersion)
	case sb.HashType > hashTypeNormal:
		return fmt.Errorf("check superblock: unsupported hash type %d, want 0 or 1", sb.HashType)
	}
	name, err := sb.AlgorithmName()
	if err != nil {
		return err
	}
	if _, err := lookupHash(name); err != nil {
		return fmt.Errorf("check superblock: %w", err)
	}
	if err := checkBlockSize("data", sb.DataBlockSize); err != nil {
		return fmt.Errorf("check superblock: %w", err)
	}
	if err := checkBlockSize("hash", sb.HashBlockSize); err != nil {
		return fmt.Errorf("check superblock: %w", err)
	}
	switch {
	case sb.DataBlocks == 0:
		return fmt.Errorf("check superblock: data blocks is 0")
	case sb.SaltSize > MaxSaltSize:
		return fmt.Errorf("check superblock: salt size %d is more than %d", sb.SaltSize, MaxSaltSize)
	}
	return nil
}

// AlgorithmName returns the NUL-terminated hash name.
func (sb *Superblock) AlgorithmName() (string, error) {
	i := bytes.IndexByte(sb.Algorithm[:], 0)
	if i < 0 {
		return "", fmt.Errorf("check superblock: algorithm name is not NUL-terminated")
	}
	return string(sb.Algorithm[:i]), nil
}

// Params returns the tree parameters the superblock records.
func (sb *Superblock) Params() Params {
	name, _ := sb.AlgorithmName()
	salt := append([]byte{}, sb.Salt[:min(int(sb.SaltSize), MaxSaltSize)]...)
	return Params{
		Hash: name, DataBlockSize: sb.DataBlockSize, HashBlockSize: sb.HashBlockSize,
		ChromeOS: sb.HashType == hashTypeChromeOS, Salt: salt, NoSalt: len(salt) == 0,
		UUID: sb.UUID, DataBlocks: sb.DataBlocks,
	}
}

// Result describes the tree of a superblock read at hashOffset, with the
// given root hash (may be nil).
func (sb *Superblock) Result(hashOffset int64, rootHash []byte) (*Result, error) {
	if err := sb.check(); err != nil {
		return nil, err
	}
	return NewResult(sb.Params(), sb.DataBlocks, hashOffset, rootHash)
}

// newSuperblock returns the superblock of a described tree.
func newSuperblock(r *Result) *Superblock {
	sb := &Superblock{
		Signature: magic, Version: superblockVersion, HashType: r.HashType,
		UUID: r.UUID, DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize,
		DataBlocks: r.DataBlocks, SaltSize: uint16(len(r.Salt)),
	}
	copy(sb.Algorithm[:], r.Hash)
	copy(sb.Salt[:], r.Salt)
	return sb
}

// Open describes the tree on a hash device: with a superblock (the
// default) its parameters come from the superblock at hashOffset and p is
// ignored except for NoSuperblock; without one they come from p, and the
// number of data blocks from p.DataBlocks or else dataSize.
//
// dataSize is the size of the data device, 0 when unknown. A data device
// too small for the tree is an error wrapping ErrShortData.
func Open(hash io.ReaderAt, hashOffset int64, dataSize int64, p Params, rootHash []byte) (*Result, error) {
	if p.NoSuperblock {
		blocks := p.DataBlocks
		bs := p.DataBlockSize
		if bs == 0 {
			bs = DefaultBlockSize
		}
		if blocks == 0 && dataSize > 0 {
			blocks = uint64(dataSize) / uint64(bs)
		}
		r, err := NewResult(p, blocks, hashOffset, rootHash)
		if err == nil && dataSize > 0 && dataSize < r.DataSize() {
			err = fmt.Errorf("%w: data device is %d bytes, %d data blocks of %d bytes need %d", ErrShortData, dataSize, r.DataBlocks, r.DataBlockSize, r.DataSize())
		}
		return r, err
	}
	sb, err := ReadSuperblock(hash, hashOffset)
	if err != nil {
		return nil, err
	}
	r, err := sb.Result(hashOffset, rootHash)
	if err == nil && dataSize > 0 && dataSize < r.DataSize() {
		return nil, fmt.Errorf("%w: data device is %d bytes, superblock needs %d (%d blocks of %d bytes)", ErrShortData, dataSize, r.DataSize(), r.DataBlocks, r.DataBlockSize)
	}
	return r, err
}
