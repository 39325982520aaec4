package verity

import (
	"fmt"
	"hash"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// blockHasher computes salted block digests; one per goroutine, reused for
// every block so hashing does not allocate.
type blockHasher struct {
	h        hash.Hash
	salt     []byte
	chromeOS bool
}

func (r *Result) newHasher() *blockHasher {
	return &blockHasher{h: r.alg.new(), salt: r.Salt, chromeOS: r.HashType == hashTypeChromeOS}
}

// sum writes the digest of block into dst, which must have room for it:
// hash type 1 hashes salt then block, hash type 0 block then salt.
func (b *blockHasher) sum(dst, block []byte) {
	b.h.Reset()
	if !b.chromeOS {
		b.h.Write(b.salt)
	}
	b.h.Write(block)
	if b.chromeOS {
		b.h.Write(b.salt)
	}
	b.h.Sum(dst[:0])
}

// leafWorker hashes units of whole leaf hash blocks: it reads the data they
// cover in big reads into its own buffer and fills out with the leaf hash
// blocks and digests with their digests (the next level's entries).
type leafWorker struct {
	r       *Result
	h       *blockHasher
	src     blockSource
	rbuf    []byte // data read buffer, a multiple of the data block size
	out     []byte // unitBlocks hash blocks
	digests []byte // unitBlocks digests of out's blocks
	stored  []byte // Verify: the stored hash blocks of the unit
}

// unitBlocks is the number of leaf hash blocks per unit of work: enough
// to cover defaultReadSize of data, at least one.
func (r *Result) unitBlocks() uint64 {
	perLeaf := uint64(r.DataBlockSize) << r.hashPerBlockBits()
	return max(1, defaultReadSize/perLeaf)
}

func (r *Result) newLeafWorker(src blockSource) *leafWorker {
	g := r.unitBlocks()
	covered := g * uint64(r.DataBlockSize) << r.hashPerBlockBits()
	readSize := min(covered, defaultReadSize)
	readSize -= readSize % uint64(r.DataBlockSize)
	return &leafWorker{
		r: r, h: r.newHasher(), src: src,
		rbuf:    make([]byte, readSize),
		out:     make([]byte, g*uint64(r.HashBlockSize)),
		digests: make([]byte, g*uint64(r.alg.size)),
	}
}

// hashUnit hashes unit u and returns its first leaf hash block and count.
func (w *leafWorker) hashUnit(u uint64) (first uint64, n int, err error) {
	r := w.r
	g := r.unitBlocks()
	bits, hbs, dbs := r.hashPerBlockBits(), uint64(r.HashBlockSize), uint64(r.DataBlockSize)
	first = u * g
	n = int(min(g, r.Levels[0].Blocks-first))
	out := w.out[:uint64(n)*hbs]
	clear(out)
	ds := r.alg.size
	b0 := first << bits
	b1 := min(b0+uint64(n)<<bits, r.DataBlocks)
	for b := b0; b < b1; {
		cnt := min(uint64(len(w.rbuf))/dbs, b1-b)
		buf, release, err := w.src.view(w.rbuf[:cnt*dbs], int64(b*dbs))
		if err != nil {
			return 0, 0, fmt.Errorf("read data blocks %d..%d: %w", b, b+cnt-1, err)
		}
		err = w.hashBlocks(out, buf, b-b0)
		release()
		if err != nil {
			return 0, 0, fmt.Errorf("read data blocks %d..%d: %w", b, b+cnt-1, err)
		}
		b += cnt
	}
	for j := 0; j < n; j++ {
		w.h.sum(w.digests[j*ds:(j+1)*ds], out[uint64(j)*hbs:uint64(j+1)*hbs])
	}
	return first, n, nil
}

// hashBlocks hashes the data blocks in buf, the first being block rel of
// the unit, into their slots in out. A memory fault (a mapped file that
// shrank) becomes an error: the worker goroutine runs with
// debug.SetPanicOnFault.
func (w *leafWorker) hashBlocks(out, buf []byte, rel uint64) (err error) {
	defer faultGuard(&err)
	r := w.r
	bits, hbs, dbs := r.hashPerBlockBits(), uint64(r.HashBlockSize), uint64(r.DataBlockSize)
	slot, ds := uint64(r.slotSize()), uint64(r.alg.size)
	for i := uint64(0); i < uint64(len(buf))/dbs; i++ {
		pos := (rel>>bits)*hbs + (rel&(1<<bits-1))*slot
		w.h.sum(out[pos:pos+ds], buf[i*dbs:(i+1)*dbs])
		rel++
	}
	return nil
}

// leafPass runs visit for every unit of the leaf level on GOMAXPROCS
// workers taking units in order. visit returning a non-nil error stops the
// pass; the error of the lowest unit is returned. skip(u) lets Verify stop
// early once a lower unit found corruption. Before each unit the run's
// context is checked, after it the run's progress advances.
func (r *Result) leafPass(x *run, data io.ReaderAt, visit func(w *leafWorker, u uint64) error, skip func(u uint64) bool) error {
	src := newSource(data, r.DataSize())
	defer src.close()
	g := r.unitBlocks()
	units := (r.Levels[0].Blocks + g - 1) / g
	workers := int(min(uint64(runtime.GOMAXPROCS(0)), units))
	var (
		next    atomic.Uint64
		stop    atomic.Bool
		mu      sync.Mutex
		errUnit = units
		firstEr error
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			debug.SetPanicOnFault(true) // for hashBlocks; this goroutine only
			w := r.newLeafWorker(src)
			for !stop.Load() {
				u := next.Add(1) - 1
				if u >= units || (skip != nil && skip(u)) {
					return
				}
				err := x.err()
				if err == nil {
					err = visit(w, u)
				}
				if err != nil {
					mu.Lock()
					if u < errUnit {
						errUnit, firstEr = u, err
					}
					mu.Unlock()
					stop.Store(true)
					continue
				}
				x.add(r.unitData(u))
			}
		})
	}
	wg.Wait()
	return firstEr
}

// readFull reads exactly len(buf) bytes at off.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(buf), off, err)
}

// pack lays count digests (contiguous in digests) into zeroed hash blocks
// in dst, one slot each.
func (r *Result) pack(dst, digests []byte) {
	bits, hbs, slot, ds := r.hashPerBlockBits(), r.HashBlockSize, r.slotSize(), r.alg.size
	for k := 0; k*ds < len(digests); k++ {
		pos := (k>>bits)*int(hbs) + (k&(1<<bits-1))*slot
		copy(dst[pos:pos+ds], digests[k*ds:(k+1)*ds])
	}
}

// unpack extracts count digests from hash blocks.
func (r *Result) unpack(blocks []byte, count uint64) []byte {
	bits, hbs, slot, ds := r.hashPerBlockBits(), uint64(r.HashBlockSize), uint64(r.slotSize()), uint64(r.alg.size)
	d := make([]byte, count*ds)
	for k := uint64(0); k < count; k++ {
		pos := (k>>bits)*hbs + (k&(1<<bits-1))*slot
		copy(d[k*ds:(k+1)*ds], blocks[pos:pos+ds])
	}
	return d
}
