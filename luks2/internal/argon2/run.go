package argon2

import (
	"context"
	"sync"
)

// run computes the tag into out (zeroed when ctx is cancelled). Each lane
// has one worker goroutine, locked to its OS thread for the whole run (so
// its CPU time can be measured) and the workers meet at a barrier after
// preparing their lane and after each slice of each pass (RFC 9106 §3.2
// steps 2-7). One lane runs on the calling goroutine, with no barrier.
func (in *instance) run(ctx context.Context, h0 *[64]byte, out []byte) error {
	slices := int(in.p.Time) * syncPoints
	b := newBarrier(int(in.p.Lanes), func(step int) bool {
		// Called by the last worker to arrive, all others waiting:
		// step 0 is after preparing, step k after the k-th slice.
		if step > 0 && in.progress != nil {
			in.progress(int64(step)*int64(in.segLen)*int64(in.p.Lanes), int64(in.p.Time)*int64(in.p.Blocks()))
		}
		if step == slices {
			in.finalize(out) // 7. before any lane is wiped
			return true
		}
		return ctx.Err() != nil
	})
	worker := func(lane uint32) {
		stop := StartThreadCPU()
		in.prepare(lane, h0) // 2-4.
		for step := 0; !b.wait(step); step++ {
			in.fillSegment(uint32(step/syncPoints), uint32(step%syncPoints), lane) // 5-6.
		}
		clear(in.lane(lane))
		in.cpu.Add(int64(stop()))
	}
	if in.p.Lanes == 1 {
		worker(0)
	} else {
		var wg sync.WaitGroup
		for lane := range in.p.Lanes {
			wg.Go(func() { worker(lane) })
		}
		wg.Wait()
	}
	if b.step <= slices {
		clear(out)
		return ctx.Err()
	}
	return nil
}

// barrier makes n workers wait for each other; the last one to arrive
// runs release (which says whether to stop) before letting all go on.
type barrier struct {
	mu      sync.Mutex
	cond    sync.Cond
	n, in   int
	step    int // number of completed meetings
	stop    bool
	release func(step int) bool
}

func newBarrier(n int, release func(step int) bool) *barrier {
	b := &barrier{n: n, release: release}
	b.cond.L = &b.mu
	return b
}

// wait blocks until all workers reached meeting step and reports whether
// they must stop.
func (b *barrier) wait(step int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.in++
	if b.in == b.n {
		b.in = 0
		b.stop = b.release(step)
		b.step = step + 1
		b.cond.Broadcast()
	}
	for b.step <= step {
		b.cond.Wait()
	}
	return b.stop
}
