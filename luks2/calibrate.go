package luks2

import (
	"context"
	"runtime"
	"time"
)

// Calibration follows cryptsetup's PBKDF benchmark (lib/crypto_backend/
// pbkdf_check.c) with one difference: it measures the KDF threads' CPU
// time, not wall time. cryptsetup times argon2 with a wall clock, so a
// format on a busy machine picks weaker costs (measured here: 324 MiB
// instead of 1 GiB) that then unlock far faster than the target on the
// idle machine where the unlock happens (the initrd). CPU time divided by
// the lanes that can run at once is the wall time on an idle machine.
const (
	benchMinTime   = 250 * time.Millisecond // a first measurement at least this long
	benchFastTime  = 10 * time.Millisecond  // below this, grow costs 16x
	benchAtLeast   = 95                     // accept [95%, 110%] of the target
	benchAtMost    = 110
	benchFastTries = 3  // samples (minimum taken) while searching
	benchMaxSteps  = 16 // measurements while approaching the target
)

// argon2Bench measures one argon2 run with costs (t, m) and returns its
// idle-machine wall time.
type argon2Bench struct {
	ctx      context.Context
	k        KDF
	keyLen   int
	progress Progress
	runs     int64
}

func (b *argon2Bench) measure(t, m, samples int) (time.Duration, error) {
	k := b.k
	k.Time, k.Memory, k.Salt = t, m, make([]byte, 32)
	best := time.Duration(1<<63 - 1)
	for range samples {
		s, cpu, err := deriveTimed(b.ctx, &k, []byte("calibration"), b.keyLen, nil)
		s.Destroy()
		if err != nil {
			return 0, err
		}
		b.runs++
		b.progress.report("calibrate", b.runs, -1)
		d := max(cpu/time.Duration(min(k.CPUs, runtime.NumCPU())), time.Microsecond)
		best = min(best, d)
		if d < benchMinTime {
			break
		}
	}
	return best, nil
}

// calibrateArgon2 returns the time and memory costs (memory at most k's)
// that make one argon2 run take about target: (1) from the smallest costs,
// grow memory (then time, once memory is at its maximum) until a run takes
// benchMinTime; (2) scale the costs to the target (nextArgon2), lowering
// time before memory and raising memory before time, and measure again
// until a run lands within [95%, 110%] of the target or the costs stop
// changing.
func calibrateArgon2(ctx context.Context, k KDF, keyLen int, target time.Duration, progress Progress) (int, int, error) {
	b := &argon2Bench{ctx: ctx, k: k, keyLen: keyLen, progress: progress}
	minM, maxM := max(MinArgon2Memory, 8*k.CPUs), k.Memory
	t, m := minArgon2Time, min(minM, maxM)
	var d time.Duration
	for {
		var err error
		if d, err = b.measure(t, m, benchFastTries); err != nil {
			return 0, 0, err
		}
		if d >= benchMinTime {
			break
		}
		next, grown := growArgon2(t, m, maxM, d)
		if !grown {
			break
		}
		t, m = next[0], next[1]
	}
	lo, hi := target*benchAtLeast/100, target*benchAtMost/100
	for range benchMaxSteps {
		var final bool
		t, m, final = nextArgon2(t, m, minM, maxM, d, target)
		if final {
			return t, m, nil
		}
		var err error
		if d, err = b.measure(t, m, 1); err != nil {
			return 0, 0, err
		}
		if d >= lo && d <= hi {
			return t, m, nil
		}
	}
	return t, m, nil
}

// growArgon2 is one step of calibration phase 1: memory (or, at the
// memory limit, time) grows 16x after a very short run, else in proportion
// to benchMinTime. It reports false when nothing changes.
func growArgon2(t, m, maxM int, d time.Duration) ([2]int, bool) {
	scale := func(v int) int {
		if d < benchFastTime {
			return v * 16
		}
		return int(int64(v) * int64(benchMinTime) / int64(d))
	}
	if m >= maxM {
		nt := min(scale(t), MaxArgon2Time)
		return [2]int{nt, m}, nt != t
	}
	nm := scale(m)
	if nm == m {
		return [2]int{t, m}, false
	}
	return [2]int{t, min(nm, maxM)}, true
}

// nextArgon2 scales (t, m), measured at d, towards target (cryptsetup's
// next_argon2_params): too slow lowers t, and m once t is at its minimum;
// too fast raises m, and t once m is at its maximum. final is true when
// the new costs are at a limit or unchanged.
func nextArgon2(t, m, minM, maxM int, d, target time.Duration) (int, int, bool) {
	ot, om := t, m
	tm := int64(t) * int64(m)
	if d > target {
		if nt := int(int64(t) * int64(target) / int64(d)); nt >= minArgon2Time {
			t = nt
		} else {
			t, m = minArgon2Time, int(tm*int64(target)/(minArgon2Time*int64(d)))
			if m < minM {
				return t, minM, true
			}
		}
	} else {
		nm := int64(m) * int64(target) / int64(max(d, 1))
		switch {
		case nm > int64(maxM):
			t, m = int(min(tm*int64(target)/(int64(maxM)*int64(max(d, 1))), MaxArgon2Time)), maxM
			if t <= minArgon2Time {
				return minArgon2Time, m, true
			}
		case nm < int64(minM):
			return t, minM, true
		default:
			m = int(nm)
		}
	}
	return t, m, t == ot && m == om
}

// calibratePBKDF2 returns the iteration count that takes target, timed
// like cryptsetup: from 2^15 iterations, grow until a run takes more than
// 500 ms of CPU time, then scale.
func calibratePBKDF2(ctx context.Context, hashName string, keyLen int, target time.Duration, progress Progress) (int, error) {
	k := KDF{Type: "pbkdf2", Hash: hashName, Salt: make([]byte, 32)}
	for n, step := 1<<15, 0; ; step++ {
		k.Iterations = n
		s, cpu, err := deriveTimed(ctx, &k, []byte("calibration"), keyLen, nil)
		s.Destroy()
		if err != nil {
			return 0, err
		}
		progress.report("calibrate", int64(step+1), -1)
		if cpu > 500*time.Millisecond || n >= 1<<31 || step > 10 {
			it := int64(n) * int64(target) / int64(max(cpu, 1))
			return int(min(max(it, MinPBKDF2Iterations), 1<<32-1)), nil
		}
		switch {
		case cpu <= 62*time.Millisecond:
			n <<= 4
		case cpu <= 125*time.Millisecond:
			n <<= 3
		case cpu <= 250*time.Millisecond:
			n <<= 2
		default:
			n <<= 1
		}
	}
}
