package luks2

import (
	"context"
	"crypto/pbkdf2"
	"errors"
	"fmt"
	"runtime"
	"time"

	"initos/luks2/internal/argon2"
)

// PBKDF limits. Argon2 parameters from an untrusted header are checked
// against them before any memory is allocated.
const (
	// MaxArgon2Memory is the largest argon2 memory cost accepted, in KiB
	// (4 GiB, cryptsetup's maximum).
	MaxArgon2Memory = 4 << 20
	// MinArgon2Memory is cryptsetup's smallest argon2 memory cost in KiB
	// (and at least 8 KiB per lane).
	MinArgon2Memory = 32
	// MaxArgon2Parallel is the largest argon2 lane count accepted.
	MaxArgon2Parallel = 16
	// MaxArgon2Time is the largest argon2 time cost accepted.
	MaxArgon2Time = 1 << 20
	// MinPBKDF2Iterations is cryptsetup's minimum pbkdf2 iteration count.
	MinPBKDF2Iterations = 1000
	// DefaultIterTime is cryptsetup's default PBKDF target time (--iter-time).
	DefaultIterTime = 2 * time.Second
	// DefaultArgon2Memory is cryptsetup's default argon2 memory cost in KiB
	// (1 GiB), lowered to half the RAM on smaller machines.
	DefaultArgon2Memory = 1 << 20
	minArgon2Time       = 4
	defaultArgon2Lanes  = 4
)

// ErrKDFLimit is returned for PBKDF parameters beyond this package's limits
// (or the machine's RAM); it is checked before allocating.
var ErrKDFLimit = errors.New("pbkdf parameters beyond limits")

// Progress is called during long work: stage names the step ("calibrate"
// while the PBKDF costs are benchmarked, "derive" while the keyslot key
// is derived), done counts units of total (argon2 blocks), and total < 0
// means the length is unknown.
type Progress func(stage string, done, total int64)

func (p Progress) report(stage string, done, total int64) {
	if p != nil {
		p(stage, done, total)
	}
}

// PBKDF selects a keyslot's key derivation, with cryptsetup's parameters.
// The zero value means cryptsetup's defaults: argon2id with min(4, CPUs)
// lanes, calibrated so that unlocking takes IterTime (2 s), using at most
// 1 GiB (at most half the RAM).
type PBKDF struct {
	Type     string // "argon2id" (default), "argon2i" or "pbkdf2"
	Hash     string // pbkdf2, anti-forensic splitter and digest hash (--hash), default "sha256"
	Memory   int    // argon2 memory cost in KiB (--pbkdf-memory); with calibration the maximum
	Parallel int    // argon2 lanes (--pbkdf-parallel)
	// Iterations forces the argon2 time cost or the pbkdf2 iterations
	// (--pbkdf-force-iterations): no calibration, Memory is used as is.
	Iterations int
	// IterTime is the calibration target when Iterations is 0
	// (--iter-time), default 2 s.
	IterTime time.Duration
}

// hash is the hash of the PBKDF (pbkdf2) and of the anti-forensic
// splitter and digest, as cryptsetup's --hash sets them all: sha256 by
// default.
func (p PBKDF) hash() string {
	if p.Hash != "" {
		return p.Hash
	}
	return "sha256"
}

func (p PBKDF) iterTime() time.Duration {
	if p.IterTime > 0 {
		return p.IterTime
	}
	return DefaultIterTime
}

// kdfFor resolves p into the keyslot KDF (without salt), calibrating the
// costs when no iteration count is forced.
func (p PBKDF) kdfFor(ctx context.Context, keyLen int, progress Progress) (KDF, error) {
	k, err := p.resolve()
	if err != nil || p.Iterations != 0 {
		return k, err
	}
	switch k.Type {
	case "pbkdf2":
		k.Iterations, err = calibratePBKDF2(ctx, k.Hash, keyLen, p.iterTime(), progress)
	default:
		k.Time, k.Memory, err = calibrateArgon2(ctx, k, keyLen, p.iterTime(), progress)
	}
	if err != nil {
		return KDF{}, fmt.Errorf("calibrate %s: %w", k.Type, err)
	}
	return k, checkKDF(&k)
}

// resolve fills in defaults and checks p without benchmarking, so that
// Format refuses bad parameters before it computes anything. Costs left
// to calibration get the limits calibration will stay within.
func (p PBKDF) resolve() (KDF, error) {
	k := KDF{Type: p.Type}
	if k.Type == "" {
		k.Type = "argon2id"
	}
	switch k.Type {
	case "pbkdf2":
		k.Hash = p.hash()
		k.Iterations = max(p.Iterations, MinPBKDF2Iterations)
	case "argon2i", "argon2id":
		k.Memory, k.CPUs, k.Time = p.Memory, p.Parallel, max(p.Iterations, minArgon2Time)
		if k.CPUs == 0 {
			k.CPUs = min(defaultArgon2Lanes, runtime.NumCPU())
		}
		if k.Memory == 0 {
			k.Memory = defaultMemory()
		}
	default:
		return KDF{}, fmt.Errorf("pbkdf %q: %w (supported: argon2id, argon2i, pbkdf2)", k.Type, ErrUnsupported)
	}
	if _, err := hashByName(p.hash()); err != nil {
		return KDF{}, err
	}
	if p.Iterations != 0 && k.Type == "pbkdf2" && p.Iterations < MinPBKDF2Iterations {
		return KDF{}, fmt.Errorf("pbkdf2: %d iterations, below the minimum %d: %w", p.Iterations, MinPBKDF2Iterations, ErrKDFLimit)
	}
	if err := checkKDF(&k); err != nil {
		return KDF{}, err
	}
	return k, nil
}

// defaultMemory is cryptsetup's default argon2 memory: 1 GiB, at most half
// the RAM.
func defaultMemory() int {
	m := uint64(DefaultArgon2Memory)
	if ram := totalRAM(); ram != 0 {
		m = min(m, ram/2/1024)
	}
	return int(max(m, MinArgon2Memory))
}

// checkKDF validates KDF parameters (from a header or from options)
// against the limits, before anything is allocated.
func checkKDF(k *KDF) error {
	switch k.Type {
	case "pbkdf2":
		if _, err := hashByName(k.Hash); err != nil {
			return fmt.Errorf("pbkdf2: %w", err)
		}
		if k.Iterations < 1 || k.Iterations > 1<<32-1 {
			return fmt.Errorf("pbkdf2: iterations %d out of range: %w", k.Iterations, ErrKDFLimit)
		}
	case "argon2i", "argon2id":
		switch {
		case k.CPUs < 1 || k.CPUs > MaxArgon2Parallel:
			return fmt.Errorf("%s: cpus %d not in 1..%d: %w", k.Type, k.CPUs, MaxArgon2Parallel, ErrKDFLimit)
		case k.Memory < 8*k.CPUs || k.Memory > MaxArgon2Memory:
			return fmt.Errorf("%s: memory %d KiB not in %d..%d: %w", k.Type, k.Memory, 8*k.CPUs, MaxArgon2Memory, ErrKDFLimit)
		case k.Time < 1 || k.Time > MaxArgon2Time:
			return fmt.Errorf("%s: time %d not in 1..%d: %w", k.Type, k.Time, MaxArgon2Time, ErrKDFLimit)
		}
		if ram := totalRAM(); ram != 0 && uint64(k.Memory)*1024 > ram {
			return fmt.Errorf("%s: memory %d KiB exceeds the machine's %d KiB RAM: %w", k.Type, k.Memory, ram/1024, ErrKDFLimit)
		}
	default:
		return fmt.Errorf("kdf type %q: %w (supported: argon2id, argon2i, pbkdf2)", k.Type, ErrUnsupported)
	}
	return nil
}

// derive runs the keyslot KDF over the passphrase into a keyLen-byte
// secret. Parameters are checked first; argon2 stops at a slice boundary
// when ctx is cancelled.
func derive(ctx context.Context, k *KDF, pass []byte, keyLen int, progress Progress) (*Secret, error) {
	s, _, err := deriveTimed(ctx, k, pass, keyLen, progress)
	return s, err
}

// deriveTimed is derive that also returns the CPU time the KDF's threads
// used.
func deriveTimed(ctx context.Context, k *KDF, pass []byte, keyLen int, progress Progress) (*Secret, time.Duration, error) {
	if err := checkKDF(k); err != nil {
		return nil, 0, err
	}
	if len(k.Salt) == 0 {
		return nil, 0, fmt.Errorf("%s: empty salt", k.Type)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	out := NewSecret(keyLen)
	var cpu time.Duration
	var err error
	switch k.Type {
	case "pbkdf2":
		cpu, err = pbkdf2Into(out.Bytes(), k, pass)
	default:
		mode := argon2.Argon2id
		if k.Type == "argon2i" {
			mode = argon2.Argon2i
		}
		p := argon2.Params{Mode: mode, Time: uint32(k.Time), Memory: uint32(k.Memory), Lanes: uint32(k.CPUs)}
		var st argon2.Stats
		st, err = argon2.Key(ctx, pass, k.Salt, p, out.Bytes(), func(done, total int64) { progress.report("derive", done, total) })
		cpu = st.CPU
	}
	if err != nil {
		out.Destroy()
		return nil, cpu, fmt.Errorf("%s: %w", k.Type, err)
	}
	return out, cpu, nil
}

// pbkdf2Into derives len(out) bytes with PBKDF2 and returns the CPU time
// it took.
func pbkdf2Into(out []byte, k *KDF, pass []byte) (time.Duration, error) {
	h, _ := hashByName(k.Hash)
	stop := argon2.StartThreadCPU()
	key, err := pbkdf2.Key(h, string(pass), k.Salt, k.Iterations, len(out))
	cpu := stop()
	if err != nil {
		return cpu, err
	}
	copy(out, key)
	clear(key)
	return cpu, nil
}
