//go:build !amd64 || purego

package argon2

// compress is G(x, y) (RFC 9106 §3.5), see compressGeneric.
func compress(out, x, y *block, xor bool) { compressGeneric(out, x, y, xor) }
