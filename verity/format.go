package verity

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Format builds the hash tree of the first p.DataBlocks (default: all
// whole) data blocks of data, which is dataSize bytes long, and writes it
// to hash at hashOffset: the superblock (unless p.NoSuperblock) at
// hashOffset, the tree from the next hash block on, top level first. The
// bytes between the superblock and the tree are not written, as
// veritysetup leaves them.
//
// The superblock is written last. When hash can be synced (an *os.File),
// the tree is made durable before the superblock is written, and the
// superblock after, as veritysetup does: after a crash the superblock
// never vouches for a tree that is not on disk.
//
// hash receives concurrent WriteAt calls on disjoint ranges (allowed by the
// io.WriterAt contract; *os.File is fine). A regular *os.File shorter
// than Result.HashEnd is extended to it when it gets a superblock. When data and hash are the same
// file the caller keeps the tree after the data.
func Format(data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params) (*Result, error) {
	return FormatContext(context.Background(), data, dataSize, hash, hashOffset, p, nil)
}

// Progress receives the number of data bytes hashed so far. It is called
// after each unit of work (a few MiB), from the worker goroutines but one
// call at a time.
type Progress func(done int64)

// FormatContext is Format that stops when ctx is done and reports its
// progress (progress may be nil). Cancellation is checked before each unit
// of work; a cancelled Format returns an error wrapping context.Cause(ctx)
// and has written no superblock (parts of the tree may be written: the
// caller that must leave nothing behind writes to a temporary file, or
// restores the hash area).
func FormatContext(ctx context.Context, data io.ReaderAt, dataSize int64, hash io.WriterAt, hashOffset int64, p Params, progress Progress) (*Result, error) {
	r, err := newFormat(data, dataSize, hashOffset, p)
	if err != nil {
		return nil, fmt.Errorf("format verity: %w", err)
	}
	if err := r.build(&run{ctx: ctx, progress: progress}, data, hash); err != nil {
		return nil, fmt.Errorf("format verity: %w", err)
	}
	if err := r.writeSuperblock(hash); err != nil {
		return nil, fmt.Errorf("format verity: %w", err)
	}
	return r, nil
}

// newFormat checks the parameters and the data size and lays out the tree.
func newFormat(data io.ReaderAt, dataSize, hashOffset int64, p Params) (*Result, error) {
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	if p, err = p.drawRandom(); err != nil {
		return nil, err
	}
	if dataSize < 0 {
		return nil, fmt.Errorf("negative data size %d", dataSize)
	}
	blocks := p.DataBlocks
	whole := uint64(dataSize) / uint64(p.DataBlockSize)
	if blocks == 0 {
		blocks = whole
	} else if blocks > whole {
		return nil, fmt.Errorf("%d data blocks requested, the data holds %d", blocks, whole)
	}
	r, err := newResult(p, blocks, hashOffset, nil)
	if err != nil {
		return nil, err
	}
	if err := checkDataLen(data, r.DataSize()); err != nil {
		return nil, err
	}
	return r, nil
}

// syncer is a hash device that can be flushed to stable storage.
type syncer interface{ Sync() error }

// writeSuperblock syncs the tree, writes the superblock (extending a
// regular file to HashEnd) and syncs again.
func (r *Result) writeSuperblock(hash io.WriterAt) error {
	s, canSync := hash.(syncer)
	if canSync {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync tree: %w", err)
		}
	}
	if !r.Superblock {
		return nil
	}
	if err := extend(hash, r.HashEnd()); err != nil {
		return err
	}
	sb, _ := newSuperblock(r).MarshalBinary()
	if _, err := hash.WriteAt(sb, r.HashOffset); err != nil {
		return fmt.Errorf("write superblock: %w", err)
	}
	if canSync {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync superblock: %w", err)
		}
	}
	return nil
}

// build computes and writes the tree and sets r.RootHash, following
// cryptsetup's VERITY_create:
//  1. a single data block has no tree: the root is its digest;
//  2. the leaf level hashes the data blocks, in parallel;
//  3. every further level hashes the blocks of the level below, until
//     the top level's single block, whose digest is the root hash.
func (r *Result) build(run *run, data io.ReaderAt, hash io.WriterAt) error {
	ds := r.alg.size
	if len(r.Levels) == 0 {
		root, err := r.hashDataBlock(data, 0)
		r.RootHash = root
		return err
	}
	below := make([]byte, r.Levels[0].Blocks*uint64(ds))
	hbs := int64(r.HashBlockSize)
	err := r.leafPass(run, data, func(w *leafWorker, u uint64) error {
		first, n, err := w.hashUnit(u)
		if err != nil {
			return err
		}
		off := int64(r.Levels[0].Start+first) * hbs
		if _, err := hash.WriteAt(w.out[:int64(n)*hbs], off); err != nil {
			return fmt.Errorf("write level 0 at offset %d: %w", off, err)
		}
		copy(below[first*uint64(ds):], w.digests[:n*ds])
		return nil
	}, nil)
	if err != nil {
		return err
	}
	h := r.newHasher()
	for i := 1; i < len(r.Levels); i++ {
		lvl := r.Levels[i]
		buf := make([]byte, lvl.Blocks*uint64(hbs))
		r.pack(buf, below)
		if _, err := hash.WriteAt(buf, int64(lvl.Start)*hbs); err != nil {
			return fmt.Errorf("write level %d at offset %d: %w", i, int64(lvl.Start)*hbs, err)
		}
		below = make([]byte, lvl.Blocks*uint64(ds))
		for j := range lvl.Blocks {
			h.sum(below[j*uint64(ds):], buf[j*uint64(hbs):(j+1)*uint64(hbs)])
		}
	}
	r.RootHash = below[:ds]
	return nil
}

// sizedFile is a regular file that can grow (*os.File).
type sizedFile interface {
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
}

// extend grows a regular hash file to end bytes, as veritysetup does when
// it writes a superblock: the tree of a single data block is empty, yet the
// hash area ends after the superblock's hash block.
func extend(hash io.WriterAt, end int64) error {
	f, ok := hash.(sizedFile)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() >= end {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return fmt.Errorf("extend hash file to %d bytes: %w", end, err)
	}
	return nil
}

// hashDataBlock returns the digest of data block i.
func (r *Result) hashDataBlock(data io.ReaderAt, i uint64) ([]byte, error) {
	buf := make([]byte, r.DataBlockSize)
	if err := readFull(data, buf, int64(i)*int64(r.DataBlockSize)); err != nil {
		return nil, fmt.Errorf("read data block %d: %w", i, err)
	}
	d := make([]byte, r.alg.size)
	r.newHasher().sum(d, buf)
	return d, nil
}
