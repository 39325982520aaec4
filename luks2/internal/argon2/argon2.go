package argon2

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"time"

	"golang.org/x/crypto/blake2b"
)

// Mode is the Argon2 variant (RFC 9106 §3.1, the type y).
type Mode uint32

// The three variants, numbered as in RFC 9106.
const (
	Argon2d  Mode = 0
	Argon2i  Mode = 1
	Argon2id Mode = 2
)

// version is the Argon2 version number v (0x13, RFC 9106 §3.1).
const version = 0x13

// syncPoints is the number of slices a lane is cut into (SL, RFC 9106 §3.4).
const syncPoints = 4

// Limits of the parameters (RFC 9106 §3.1).
const (
	MaxLanes = 1<<24 - 1
	minOut   = 4
)

// Params are the cost parameters of one Argon2 computation.
type Params struct {
	Mode   Mode
	Time   uint32 // number of passes t, >= 1
	Memory uint32 // memory size m in KiB, >= 8 * Lanes
	Lanes  uint32 // degree of parallelism p (also the number of threads)
	Secret []byte // optional secret value K
	Data   []byte // optional associated data X
}

// Stats describes a finished computation.
type Stats struct {
	// CPU is the CPU time (user + system) of the lane threads, including
	// faulting in the memory: with L lanes on at least L idle CPUs the
	// wall time is about CPU / L, whatever other load the machine had.
	CPU time.Duration
	// Locked reports whether the work memory was mlock'ed.
	Locked bool
}

// Progress is called after each slice with the number of blocks computed
// so far and the total.
type Progress func(done, total int64)

// ErrParams is wrapped by the errors for parameters out of range.
var ErrParams = errors.New("argon2: invalid parameters")

// check validates p and the output length.
func (p *Params) check(outLen int) error {
	switch {
	case p.Mode > Argon2id:
		return fmt.Errorf("%w: unknown mode %d", ErrParams, p.Mode)
	case p.Time < 1:
		return fmt.Errorf("%w: time %d, want >= 1", ErrParams, p.Time)
	case p.Lanes < 1 || p.Lanes > MaxLanes:
		return fmt.Errorf("%w: lanes %d not in 1..%d", ErrParams, p.Lanes, MaxLanes)
	case uint64(p.Memory) < 8*uint64(p.Lanes):
		return fmt.Errorf("%w: memory %d KiB below 8 KiB per lane (%d lanes)", ErrParams, p.Memory, p.Lanes)
	case outLen < minOut:
		return fmt.Errorf("%w: output length %d, want >= %d", ErrParams, outLen, minOut)
	}
	return nil
}

// Blocks returns the number of memory blocks m' that p uses: m rounded down
// to a multiple of 4 * lanes (RFC 9106 §3.2 step 2), so the work memory
// is Blocks() KiB.
func (p *Params) Blocks() uint32 {
	q := syncPoints * p.Lanes
	return p.Memory / q * q
}

// Key computes the Argon2 tag of password and salt with parameters p into
// out (len(out) is the tag length T, at least 4 bytes). It stops at the
// next slice boundary when ctx is cancelled, returning ctx's error; out is
// then zeroed. progress may be nil.
func Key(ctx context.Context, password, salt []byte, p Params, out []byte, progress Progress) (Stats, error) {
	if err := p.check(len(out)); err != nil {
		return Stats{}, err
	}
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	// 1. H0 over the parameters and inputs (RFC 9106 §3.2 step 1).
	h0 := initialHash(password, salt, &p, len(out))
	defer clear(h0[:])
	m, err := newMemory(int(p.Blocks()))
	if err != nil {
		return Stats{}, fmt.Errorf("argon2: allocate %d KiB: %w", p.Blocks(), err)
	}
	defer m.free()
	in := newInstance(&p, m, progress)
	err = in.run(ctx, &h0, out)
	return in.stats(), err
}

// initialHash computes H0 = H^64(LE32(p) || LE32(T) || LE32(m) || LE32(t)
// || LE32(v) || LE32(y) || LE32(len(P)) || P || LE32(len(S)) || S ||
// LE32(len(K)) || K || LE32(len(X)) || X) (RFC 9106 §3.2 step 1).
func initialHash(password, salt []byte, p *Params, outLen int) [blake2b.Size]byte {
	h, _ := blake2b.New512(nil)
	for _, v := range []uint32{p.Lanes, uint32(outLen), p.Memory, p.Time, version, uint32(p.Mode)} {
		writeLE32(h, v)
	}
	for _, b := range [][]byte{password, salt, p.Secret, p.Data} {
		writeLE32(h, uint32(len(b)))
		h.Write(b)
	}
	var sum [blake2b.Size]byte
	h.Sum(sum[:0])
	return sum
}

func writeLE32(h hash.Hash, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	h.Write(b[:])
}

// hashPrime computes the variable-length hash H'^T(in...) of RFC 9106
// §3.3 into out (T = len(out)).
func hashPrime(out []byte, in ...[]byte) {
	var tlen [4]byte
	binary.LittleEndian.PutUint32(tlen[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil)
		h.Write(tlen[:])
		for _, b := range in {
			h.Write(b)
		}
		h.Sum(out[:0])
		return
	}
	// V1 = H^64(LE32(T) || A); V_i = H^64(V_{i-1}); the output is the
	// first 32 bytes of V1..Vr, then V_{r+1} = H^(T-32r)(V_r) whole,
	// with r = ceil(T/32) - 2.
	h, _ := blake2b.New512(nil)
	h.Write(tlen[:])
	for _, b := range in {
		h.Write(b)
	}
	var v [blake2b.Size]byte
	defer clear(v[:])
	h.Sum(v[:0])
	r := (len(out)+31)/32 - 2
	for i := 0; i < r; i++ {
		copy(out[32*i:], v[:32])
		if i < r-1 {
			v = blake2b.Sum512(v[:])
		}
	}
	last, _ := blake2b.New(len(out)-32*r, nil)
	last.Write(v[:])
	last.Sum(out[32*r : 32*r])
}
