package verity

import (
	"context"
	"fmt"
	"sync"
)

// run carries what a long Format or Verify pass checks and reports to:
// cancellation between units of work and the progress callback. A nil
// *run (or zero fields) means neither.
type run struct {
	ctx      context.Context
	progress Progress
	mu       sync.Mutex // serializes progress calls and guards done
	done     int64
}

// err returns a non-nil error once the run's context is done.
func (x *run) err() error {
	if x == nil || x.ctx == nil {
		return nil
	}
	if x.ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", context.Cause(x.ctx))
	}
	return nil
}

// add counts n more data bytes hashed and reports the total.
func (x *run) add(n int64) {
	if x == nil || x.progress == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.done += n
	x.progress(x.done)
}

// unitData returns the number of data bytes unit u covers.
func (r *Result) unitData(u uint64) int64 {
	per := r.unitBlocks() << r.hashPerBlockBits() // data blocks per unit
	first := u * per
	if first >= r.DataBlocks {
		return 0
	}
	return int64(min(per, r.DataBlocks-first)) * int64(r.DataBlockSize)
}
