package argon2

import "math/bits"

// BlockSize is the size of one Argon2 memory block in bytes (RFC 9106 §3.2).
const BlockSize = 1024

// block is one 1024-byte memory block as 128 little-endian 64-bit words.
type block [BlockSize / 8]uint64

// compress computes the compression function G(x, y) of RFC 9106 §3.5 into
// out. With xor set (passes after the first, version 0x13) the result is
// XORed into out's previous content instead of replacing it. out may be
// x or y.
func compressGeneric(out, x, y *block, xor bool) {
	// 1. R = X XOR Y.
	var r, q block
	for i := range r {
		r[i] = x[i] ^ y[i]
	}
	q = r
	// 2-3. Apply P to each row, then to each column of q.
	permuteBlockGeneric(&q)
	// 4. G(X, Y) = Q XOR R (and XOR the old block in later passes).
	if xor {
		for i := range out {
			out[i] ^= q[i] ^ r[i]
		}
		return
	}
	for i := range out {
		out[i] = q[i] ^ r[i]
	}
}

// permuteBlockGeneric applies P to each of the 8 rows of q (16
// consecutive words each), then to each of the 8 columns: column j is the
// 16-byte registers j, j+8, ..., j+56, that is words 2j, 2j+1, 2j+16,
// 2j+17, ... (RFC 9106 §3.5 steps 2-3).
func permuteBlockGeneric(q *block) {
	for i := 0; i < len(q); i += 16 {
		permute((*[16]uint64)(q[i : i+16]))
	}
	var col [16]uint64
	for j := 0; j < 16; j += 2 {
		for k := 0; k < 8; k++ {
			col[2*k], col[2*k+1] = q[j+16*k], q[j+16*k+1]
		}
		permute(&col)
		for k := 0; k < 8; k++ {
			q[j+16*k], q[j+16*k+1] = col[2*k], col[2*k+1]
		}
	}
}

// fBlaMka is the BlaMka mix of RFC 9106 §3.6: a + b + 2 * lo32(a) * lo32(b).
func fBlaMka(a, b uint64) uint64 {
	return a + b + 2*uint64(uint32(a))*uint64(uint32(b))
}

// permute applies the permutation P of RFC 9106 §3.6 to the 16 words
// v[0..15]: GB on the four columns, then on the four diagonals. Each GB is
// written as its two halves, which the compiler inlines.
func permute(v *[16]uint64) {
	v0, v1, v2, v3, v4, v5, v6, v7 := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	v8, v9, v10, v11, v12, v13, v14, v15 := v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]
	v0, v4, v8, v12 = gbHalf1(v0, v4, v8, v12)
	v1, v5, v9, v13 = gbHalf1(v1, v5, v9, v13)
	v2, v6, v10, v14 = gbHalf1(v2, v6, v10, v14)
	v3, v7, v11, v15 = gbHalf1(v3, v7, v11, v15)
	v0, v4, v8, v12 = gbHalf2(v0, v4, v8, v12)
	v1, v5, v9, v13 = gbHalf2(v1, v5, v9, v13)
	v2, v6, v10, v14 = gbHalf2(v2, v6, v10, v14)
	v3, v7, v11, v15 = gbHalf2(v3, v7, v11, v15)
	v0, v5, v10, v15 = gbHalf1(v0, v5, v10, v15)
	v1, v6, v11, v12 = gbHalf1(v1, v6, v11, v12)
	v2, v7, v8, v13 = gbHalf1(v2, v7, v8, v13)
	v3, v4, v9, v14 = gbHalf1(v3, v4, v9, v14)
	v0, v5, v10, v15 = gbHalf2(v0, v5, v10, v15)
	v1, v6, v11, v12 = gbHalf2(v1, v6, v11, v12)
	v2, v7, v8, v13 = gbHalf2(v2, v7, v8, v13)
	v3, v4, v9, v14 = gbHalf2(v3, v4, v9, v14)
	v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] = v0, v1, v2, v3, v4, v5, v6, v7
	v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15] = v8, v9, v10, v11, v12, v13, v14, v15
}

// GB(a, b, c, d) of RFC 9106 §3.6 is BLAKE2b's G with the BlaMka
// multiplications and no message words:
//
//	a = a + b + 2*lo(a)*lo(b); d = (d ^ a) >>> 32
//	c = c + d + 2*lo(c)*lo(d); b = (b ^ c) >>> 24
//	a = a + b + 2*lo(a)*lo(b); d = (d ^ a) >>> 16
//	c = c + d + 2*lo(c)*lo(d); b = (b ^ c) >>> 63

// gbHalf1 is the first half of GB: rotations by 32 and 24.
func gbHalf1(a, b, c, d uint64) (uint64, uint64, uint64, uint64) {
	a = fBlaMka(a, b)
	d = bits.RotateLeft64(d^a, -32)
	c = fBlaMka(c, d)
	b = bits.RotateLeft64(b^c, -24)
	return a, b, c, d
}

// gbHalf2 is the second half of GB: rotations by 16 and 63.
func gbHalf2(a, b, c, d uint64) (uint64, uint64, uint64, uint64) {
	a = fBlaMka(a, b)
	d = bits.RotateLeft64(d^a, -16)
	c = fBlaMka(c, d)
	b = bits.RotateLeft64(b^c, -63)
	return a, b, c, d
}
