//go:build !linux

package argon2

// memory is the work memory; outside Linux it is an ordinary Go slice.
type memory struct{ blocks []block }

func newMemory(n int) (*memory, error) { return &memory{blocks: make([]block, n)}, nil }

func (m *memory) populate(off, n int) {}

func (m *memory) locked() bool { return false }

func (m *memory) free() { m.blocks = nil }
