package luks2

// Secret holds key material (a volume key, a PBKDF output, AF-split
// material) outside the Go heap: in an anonymous mapping that is mlock'ed
// (never swapped out) where RLIMIT_MEMLOCK allows it, and zeroed and
// unmapped by Destroy. Because the bytes are not on the Go heap, the
// garbage collector never copies them.
//
// Limits: copies made by other code are out of reach: crypto/aes key
// schedules, argon2's work memory, the passphrase slices of callers, and
// the hex key string a dm-crypt table is rendered into. Destroy what you
// can; keep the rest short-lived.
type Secret struct {
	b      []byte
	mapped bool // b is an mmap'ed region (else Go heap fallback)
	locked bool
}

// Bytes returns the secret. The slice is invalid after Destroy.
func (s *Secret) Bytes() []byte { return s.b }

// Len returns the secret's length in bytes.
func (s *Secret) Len() int { return len(s.b) }

// Locked reports whether the memory is mlock'ed.
func (s *Secret) Locked() bool { return s.locked }

// Destroy zeroes, unlocks and releases the secret. It is safe to call
// more than once and on nil.
func (s *Secret) Destroy() {
	if s == nil || s.b == nil {
		return
	}
	clear(s.b)
	s.release()
	s.b = nil
}

// NewSecret returns a zeroed secret of n bytes.
func NewSecret(n int) *Secret {
	s := &Secret{}
	s.alloc(n)
	return s
}

// SecretFrom copies b into a new Secret (the caller should clear b).
func SecretFrom(b []byte) *Secret {
	s := NewSecret(len(b))
	copy(s.b, b)
	return s
}
