package argon2

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// instance is one running computation: the parameters, the work memory
// cut into lanes of laneLen blocks, and the accounting.
type instance struct {
	p        *Params
	mem      *memory
	laneLen  uint32 // q = m' / p
	segLen   uint32 // q / SL
	progress Progress
	cpu      atomic.Int64 // nanoseconds of lane-thread CPU time
}

func newInstance(p *Params, m *memory, progress Progress) *instance {
	q := p.Blocks() / p.Lanes
	return &instance{p: p, mem: m, laneLen: q, segLen: q / syncPoints, progress: progress}
}

func (in *instance) stats() Stats {
	return Stats{CPU: time.Duration(in.cpu.Load()), Locked: in.mem.locked()}
}

// lane returns the blocks of one lane.
func (in *instance) lane(l uint32) []block {
	return in.mem.blocks[l*in.laneLen : (l+1)*in.laneLen]
}

// prepare faults in (or locks) the memory of a lane and computes its first
// two blocks: B[i][j] = H'^1024(H0 || LE32(j) || LE32(i)) for j = 0, 1
// (RFC 9106 §3.2 steps 3-4).
func (in *instance) prepare(l uint32, h0 *[64]byte) {
	in.mem.populate(int(l*in.laneLen), int(in.laneLen))
	var buf [BlockSize]byte
	defer clear(buf[:])
	var idx [8]byte
	binary.LittleEndian.PutUint32(idx[4:], l)
	lane := in.lane(l)
	for j := range uint32(2) {
		binary.LittleEndian.PutUint32(idx[:4], j)
		hashPrime(buf[:], h0[:], idx[:])
		for k := range lane[j] {
			lane[j][k] = binary.LittleEndian.Uint64(buf[8*k:])
		}
	}
}

// dataIndependent reports whether a segment uses Argon2i addressing:
// always in Argon2i, in the first half of the first pass in Argon2id
// (RFC 9106 §3.4.1).
func (in *instance) dataIndependent(pass, slice uint32) bool {
	return in.p.Mode == Argon2i || (in.p.Mode == Argon2id && pass == 0 && slice < syncPoints/2)
}

// addresses generates the Argon2i pseudo-random values for a segment
// (RFC 9106 §3.4.1.2): blocks G(0, G(0, Z)) where Z holds the position,
// the parameters and a counter bumped for every new block of 128 values.
type addresses struct {
	input, addr, zero block
}

func (a *addresses) init(in *instance, pass, slice, lane uint32) {
	a.input = block{uint64(pass), uint64(lane), uint64(slice), uint64(in.p.Blocks()), uint64(in.p.Time), uint64(in.p.Mode)}
}

func (a *addresses) next() {
	a.input[6]++
	compress(&a.addr, &a.zero, &a.input, false)
	compress(&a.addr, &a.zero, &a.addr, false)
}

// fillSegment computes the blocks of one segment (lane, slice) of a pass:
// B[i][j] = G(B[i][j-1], B[l][z]), XORed into the old B[i][j] after the
// first pass (RFC 9106 §3.2 steps 5-6, version 0x13).
func (in *instance) fillSegment(pass, slice, lane uint32) {
	var a addresses
	indep := in.dataIndependent(pass, slice)
	start := uint32(0)
	if pass == 0 && slice == 0 {
		start = 2 // the first two blocks come from H0
	}
	if indep {
		a.init(in, pass, slice, lane)
		if start != 0 {
			a.next()
		}
	}
	blocks := in.mem.blocks
	curr := lane*in.laneLen + slice*in.segLen + start
	prev := curr - 1
	if curr%in.laneLen == 0 {
		prev = curr + in.laneLen - 1 // the last block of the lane
	}
	for i := start; i < in.segLen; i++ {
		var rnd uint64
		if indep {
			if i%128 == 0 {
				a.next()
			}
			rnd = a.addr[i%128]
		} else {
			rnd = blocks[prev][0]
		}
		refLane := uint32(rnd>>32) % in.p.Lanes
		if pass == 0 && slice == 0 {
			refLane = lane
		}
		ref := refLane*in.laneLen + in.refIndex(pass, slice, i, refLane == lane, uint32(rnd))
		compress(&blocks[curr], &blocks[prev], &blocks[ref], pass > 0)
		prev, curr = curr, curr+1
	}
	clear(a.addr[:])
}

// refIndex maps the 32-bit value j1 to the index of the reference block
// inside its lane (RFC 9106 §3.4.2): the reference set is every block
// already computed that the current one may use, and j1 picks one with a
// distribution biased towards the most recent ones.
func (in *instance) refIndex(pass, slice, i uint32, sameLane bool, j1 uint32) uint32 {
	var area uint32
	switch {
	case pass == 0 && sameLane:
		area = slice*in.segLen + i - 1
	case pass == 0:
		area = slice * in.segLen
	case sameLane:
		area = in.laneLen - in.segLen + i - 1
	default:
		area = in.laneLen - in.segLen
	}
	if !sameLane && i == 0 {
		area-- // the previous block of the current lane is not yet known there
	}
	x := uint64(j1)
	x = x * x >> 32
	rel := uint64(area) - 1 - (uint64(area) * x >> 32)
	startPos := uint64(0)
	if pass != 0 && slice != syncPoints-1 {
		startPos = uint64(slice+1) * uint64(in.segLen)
	}
	return uint32((startPos + rel) % uint64(in.laneLen))
}

// finalize computes C, the XOR of the last block of every lane, and the
// tag H'^T(C) into out (RFC 9106 §3.2 step 7).
func (in *instance) finalize(out []byte) {
	var c block
	for l := range in.p.Lanes {
		last := &in.mem.blocks[(l+1)*in.laneLen-1]
		for k := range c {
			c[k] ^= last[k]
		}
	}
	var buf [BlockSize]byte
	for k, w := range c {
		binary.LittleEndian.PutUint64(buf[8*k:], w)
	}
	hashPrime(out, buf[:])
	clear(buf[:])
	clear(c[:])
}
