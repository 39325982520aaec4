package luks2

import (
	"crypto/pbkdf2"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// PBKDF limits. Argon2 parameters from an untrusted header are checked
// against them before any memory is allocated.
const (
	// MaxArgon2Memory is the largest argon2 memory cost accepted, in KiB
	// (4 GiB, cryptsetup's maximum).
	MaxArgon2Memory = 4 << 20
	// MaxArgon2Parallel is the largest argon2 lane count accepted.
	MaxArgon2Parallel = 16
	// MaxArgon2Time is the largest argon2 time cost accepted.
	MaxArgon2Time = 1 << 20
	// MinPBKDF2Iterations is cryptsetup's minimum pbkdf2 iteration count.
	MinPBKDF2Iterations = 1000
	defaultIterTime     = 2 * time.Second
	defaultArgon2Memory = 1 << 20 // KiB
	minArgon2Time       = 4
)

// prefaultMin is the argon2 memory size from which prefaultArgon2 pays off.
const prefaultMin = 64 << 20

// prefaultSlack is the extra size of the prefaulted range.
const prefaultSlack = 16 << 20

// prefaultEnabled switches prefaultArgon2 (off only in its benchmark).
var prefaultEnabled = true

// ErrKDFLimit is returned for PBKDF parameters beyond this package's limits
// (or the machine's RAM); it is checked before allocating.
var ErrKDFLimit = errors.New("pbkdf parameters beyond limits")

// PBKDF selects a keyslot's key derivation, with cryptsetup's parameters.
// The zero value means cryptsetup's defaults: argon2id, 1 GiB (at most half
// the RAM), up to 4 lanes, the time cost benchmarked for 2 s.
type PBKDF struct {
	Type       string        // "argon2id" (default), "argon2i" or "pbkdf2"
	Hash       string        // pbkdf2 hash, default "sha256"
	Memory     int           // argon2 memory cost in KiB (--pbkdf-memory)
	Parallel   int           // argon2 lanes (--pbkdf-parallel)
	Iterations int           // forced argon2 time cost or pbkdf2 iterations (--pbkdf-force-iterations)
	IterTime   time.Duration // benchmark target when Iterations is 0 (--iter-time), default 2 s
}

// kdfFor resolves p into the keyslot KDF (without salt), benchmarking the
// time cost when no iteration count is forced.
func (p PBKDF) kdfFor(keyLen int) (KDF, error) {
	k := KDF{Type: p.Type}
	if k.Type == "" {
		k.Type = "argon2id"
	}
	switch k.Type {
	case "pbkdf2":
		k.Hash = p.Hash
		if k.Hash == "" {
			k.Hash = "sha256"
		}
		k.Iterations = p.Iterations
		if k.Iterations == 0 {
			n, err := benchPBKDF2(k.Hash, keyLen, p.iterTime())
			if err != nil {
				return KDF{}, err
			}
			k.Iterations = max(n, MinPBKDF2Iterations)
		}
	case "argon2i", "argon2id":
		k.Memory, k.CPUs, k.Time = p.Memory, p.Parallel, p.Iterations
		if k.Memory == 0 {
			k.Memory = defaultArgon2Memory
			if ram := totalRAM(); ram != 0 {
				k.Memory = int(min(uint64(k.Memory), ram/2/1024))
			}
		}
		if k.CPUs == 0 {
			k.CPUs = min(4, runtime.NumCPU())
		}
		if k.Time == 0 {
			k.Time = minArgon2Time // placeholder for the limit check below
		}
		if err := checkKDF(&k); err != nil {
			return KDF{}, err
		}
		if p.Iterations == 0 {
			k.Time = benchArgon2(k, keyLen, p.iterTime())
		}
	default:
		return KDF{}, fmt.Errorf("unsupported pbkdf %q", k.Type)
	}
	return k, checkKDF(&k)
}

// check validates p (type, hash, limits) without benchmarking, so that
// Format refuses bad parameters before it touches the device. A time cost
// left to the benchmark is checked with a placeholder.
func (p PBKDF) check() error {
	if p.Iterations == 0 {
		p.Iterations = MinPBKDF2Iterations
	}
	_, err := p.kdfFor(0)
	return err
}

func (p PBKDF) iterTime() time.Duration {
	if p.IterTime > 0 {
		return p.IterTime
	}
	return defaultIterTime
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
		return fmt.Errorf("unsupported kdf %q", k.Type)
	}
	return nil
}

// derive runs the keyslot KDF over the passphrase into a keyLen-byte
// secret. Parameters are checked first.
func derive(k *KDF, pass []byte, keyLen int) (*Secret, error) {
	if err := checkKDF(k); err != nil {
		return nil, err
	}
	if len(k.Salt) == 0 {
		return nil, fmt.Errorf("%s: empty salt", k.Type)
	}
	var out []byte
	switch k.Type {
	case "pbkdf2":
		h, _ := hashByName(k.Hash)
		var err error
		if out, err = pbkdf2.Key(h, string(pass), k.Salt, k.Iterations, keyLen); err != nil {
			return nil, fmt.Errorf("pbkdf2: %w", err)
		}
	case "argon2i":
		prefaultArgon2(k.Memory * 1024)
		out = argon2.Key(pass, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen))
	case "argon2id":
		prefaultArgon2(k.Memory * 1024)
		out = argon2.IDKey(pass, k.Salt, uint32(k.Time), uint32(k.Memory), uint8(k.CPUs), uint32(keyLen))
	}
	s := SecretFrom(out)
	clear(out)
	return s, nil
}

// benchPBKDF2 returns the iteration count that takes about target.
func benchPBKDF2(hashName string, keyLen int, target time.Duration) (int, error) {
	h, err := hashByName(hashName)
	if err != nil {
		return 0, err
	}
	salt := make([]byte, 32)
	for n := 1 << 12; ; n *= 2 {
		start := time.Now()
		if _, err := pbkdf2.Key(h, "benchmark", salt, n, keyLen); err != nil {
			return 0, err
		}
		if d := time.Since(start); d >= 50*time.Millisecond || n >= 1<<30 {
			return int(float64(n) * float64(target) / float64(d)), nil
		}
	}
}

// benchArgon2 returns the time cost that takes about target with k's memory
// and lanes (at least 4, like cryptsetup), measuring one pass.
func benchArgon2(k KDF, keyLen int, target time.Duration) int {
	k.Time, k.Salt = 1, make([]byte, 32)
	start := time.Now()
	s, err := derive(&k, []byte("benchmark"), keyLen)
	d := time.Since(start)
	s.Destroy()
	if err != nil || d <= 0 {
		return minArgon2Time
	}
	return min(max(int(target/d), minArgon2Time), MaxArgon2Time)
}
