//go:build amd64 && !purego

package argon2

// compress is G(x, y) (RFC 9106 §3.5) in SSE2 (block_amd64.s), which
// every amd64 CPU has: the 16 words of a row or column of the block sit
// in 8 XMM registers and each instruction works on two of the four GB
// computations of a round. compressGeneric is the reference.
func compress(out, x, y *block, xor bool) { compressSSE2(out, x, y, xor) }

//go:noescape
func compressSSE2(out, x, y *block, xor bool)
