package verity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrCorrupt is matched (errors.Is) by every *CorruptionError.
var ErrCorrupt = errors.New("verity: corrupt block")

// DataLevel is the CorruptionError.Level of a data block.
const DataLevel = -1

// CorruptionError names the block that failed verification.
type CorruptionError struct {
	// Level is DataLevel for a data block, else the tree level of a hash
	// block: 0 is the leaf level, len(Result.Levels)-1 the top level.
	Level int
	// Block is the block's index within its level (the data block number
	// for DataLevel).
	Block uint64
	// Offset is the block's byte offset on the data or hash device.
	Offset int64
	// Reason says which check failed.
	Reason string
}

func (e *CorruptionError) Error() string {
	if e.Level == DataLevel {
		return fmt.Sprintf("verify verity: data block %d (offset %d) is corrupt: %s", e.Block, e.Offset, e.Reason)
	}
	return fmt.Sprintf("verify verity: hash block %d of level %d (offset %d) is corrupt: %s", e.Block, e.Level, e.Offset, e.Reason)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }

func (r *Result) hashCorrupt(level int, block uint64, reason string) *CorruptionError {
	off := int64(r.Levels[level].Start+block) * int64(r.HashBlockSize)
	return &CorruptionError{Level: level, Block: block, Offset: off, Reason: reason}
}

func (r *Result) dataCorrupt(block uint64, reason string) *CorruptionError {
	return &CorruptionError{Level: DataLevel, Block: block, Offset: int64(block) * int64(r.DataBlockSize), Reason: reason}
}

// Verify checks data and the tree on hash against r.RootHash, like
// `veritysetup verify`, and returns a *CorruptionError (matching
// ErrCorrupt) naming the first corrupt block:
//  1. from the top level down, each hash block of the upper levels must
//     hash to its entry in the level above (the top block to the root hash)
//     and hold zeros outside its entries;
//  2. then, in parallel and in data order, each leaf hash block is checked
//     the same way and each data block against its leaf entry; the
//     lowest corrupt position wins, a leaf hash block before its data.
//
// Other errors are I/O errors.
func (r *Result) Verify(data, hash io.ReaderAt) error {
	return r.VerifyContext(context.Background(), data, hash, nil)
}

// VerifyContext is Verify that stops when ctx is done (checked before each
// unit of work; the error wraps context.Cause(ctx)) and reports its
// progress (progress may be nil).
func (r *Result) VerifyContext(ctx context.Context, data, hash io.ReaderAt, progress Progress) error {
	x := &run{ctx: ctx, progress: progress}
	if err := x.err(); err != nil {
		return fmt.Errorf("verify verity: %w", err)
	}
	if len(r.RootHash) != r.alg.size {
		return fmt.Errorf("verify verity: root hash is %d bytes, want %d", len(r.RootHash), r.alg.size)
	}
	if err := checkDataLen(data, r.DataSize()); err != nil {
		return fmt.Errorf("verify verity: %w", err)
	}
	if len(r.Levels) == 0 {
		d, err := r.hashDataBlock(data, 0)
		if err != nil {
			return fmt.Errorf("verify verity: %w", err)
		}
		if !bytes.Equal(d, r.RootHash) {
			return r.dataCorrupt(0, "digest does not match the root hash")
		}
		return nil
	}
	expected, err := r.verifyUpper(hash)
	if err != nil {
		return err
	}
	return r.verifyLeaves(x, data, hash, expected)
}

// verifyUpper checks levels top..1 and returns the trusted digests of the
// leaf level's blocks.
func (r *Result) verifyUpper(hash io.ReaderAt) ([]byte, error) {
	ds := uint64(r.alg.size)
	hbs := uint64(r.HashBlockSize)
	expected := r.RootHash
	h := r.newHasher()
	d := make([]byte, ds)
	for i := len(r.Levels) - 1; i >= 1; i-- {
		lvl := r.Levels[i]
		stored := make([]byte, lvl.Blocks*hbs)
		if err := readFull(hash, stored, int64(lvl.Start*hbs)); err != nil {
			return nil, fmt.Errorf("verify verity: read level %d: %w", i, err)
		}
		entries := r.Levels[i-1].Blocks
		canonical := make([]byte, len(stored))
		below := r.unpack(stored, entries)
		r.pack(canonical, below)
		for j := range lvl.Blocks {
			blk := stored[j*hbs : (j+1)*hbs]
			if h.sum(d, blk); !bytes.Equal(d, expected[j*ds:(j+1)*ds]) {
				return nil, r.hashCorrupt(i, j, r.mismatchReason(i))
			}
			if !bytes.Equal(blk, canonical[j*hbs:(j+1)*hbs]) {
				return nil, r.hashCorrupt(i, j, "padding is not zero")
			}
		}
		expected = below
	}
	return expected, nil
}

func (r *Result) mismatchReason(level int) string {
	if level == len(r.Levels)-1 {
		return "digest does not match the root hash"
	}
	return fmt.Sprintf("digest does not match its entry in level %d", level+1)
}

// verifyLeaves checks the leaf level and the data in parallel.
func (r *Result) verifyLeaves(x *run, data, hash io.ReaderAt, expected []byte) error {
	var (
		mu    sync.Mutex
		first *CorruptionError
		unit  = ^uint64(0)
	)
	skip := func(u uint64) bool {
		mu.Lock()
		defer mu.Unlock()
		return u > unit
	}
	err := r.leafPass(x, data, func(w *leafWorker, u uint64) error {
		c, err := w.verifyUnit(data, hash, u, expected)
		if err != nil || c == nil {
			return err
		}
		mu.Lock()
		if u < unit {
			unit, first = u, c
		}
		mu.Unlock()
		return nil
	}, skip)
	if err != nil {
		return fmt.Errorf("verify verity: %w", err)
	}
	if first != nil {
		return first
	}
	return nil
}

// verifyUnit rebuilds unit u's leaf hash blocks and compares them with the
// stored ones; it returns the first corrupt block of the unit.
func (w *leafWorker) verifyUnit(data, hash io.ReaderAt, u uint64, expected []byte) (*CorruptionError, error) {
	r := w.r
	first, n, err := w.hashUnit(u)
	if err != nil {
		return nil, err
	}
	hbs, ds := int(r.HashBlockSize), r.alg.size
	if w.stored == nil {
		w.stored = make([]byte, len(w.out))
	}
	stored := w.stored[:n*hbs]
	if err := readFull(hash, stored, int64(r.Levels[0].Start+first)*int64(hbs)); err != nil {
		return nil, fmt.Errorf("read level 0: %w", err)
	}
	d := make([]byte, ds)
	for j := range n {
		blk, built := stored[j*hbs:(j+1)*hbs], w.out[j*hbs:(j+1)*hbs]
		idx := first + uint64(j)
		if w.h.sum(d, blk); !bytes.Equal(d, expected[idx*uint64(ds):(idx+1)*uint64(ds)]) {
			return r.hashCorrupt(0, idx, r.mismatchReason(0)), nil
		}
		if c := r.compareLeaf(idx, blk, built); c != nil {
			return c, nil
		}
	}
	return nil, nil
}

// compareLeaf finds the first difference between a stored leaf hash block
// and the one rebuilt from the data: inside an entry it is the data
// block's fault, elsewhere the padding's.
func (r *Result) compareLeaf(idx uint64, stored, built []byte) *CorruptionError {
	if bytes.Equal(stored, built) {
		return nil
	}
	for i := range stored {
		if stored[i] == built[i] {
			continue
		}
		slot := i / r.slotSize()
		data := idx<<r.hashPerBlockBits() + uint64(slot)
		if i%r.slotSize() < r.alg.size && data < r.DataBlocks && slot < 1<<r.hashPerBlockBits() {
			return r.dataCorrupt(data, fmt.Sprintf("digest does not match its entry in hash block %d of level 0", idx))
		}
		return r.hashCorrupt(0, idx, "padding is not zero")
	}
	return nil
}
