package verity

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkFormat builds the tree of 64 MiB held in memory (no I/O): the
// hashing and bookkeeping cost alone.
func BenchmarkFormat(b *testing.B) {
	for _, p := range []Params{{}, {Hash: "sha1"}, {Hash: "sha512"}, {DataBlockSize: 512, HashBlockSize: 512}} {
		b.Run(fmt.Sprintf("%s-%d", p.Hash, p.DataBlockSize), func(b *testing.B) {
			const size = 64 << 20
			data := bytes.NewReader(make([]byte, size))
			hash := newMemFile(size / 8)
			p.NoSalt = false
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Format(data, size, hash, 0, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify verifies the tree of 64 MiB held in memory.
func BenchmarkVerify(b *testing.B) {
	const size = 64 << 20
	raw := make([]byte, size)
	data := bytes.NewReader(raw)
	hash := newMemFile(size / 64)
	r, err := Format(data, size, hash, 0, Params{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Verify(data, bytes.NewReader(hash.b)); err != nil {
			b.Fatal(err)
		}
	}
}
