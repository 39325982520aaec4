//go:build amd64 && !purego

#include "textflag.h"

// The 16 words v0..v15 of one permutation P (RFC 9106 §3.6) live in
// X0..X7 as pairs: X0 = (v0, v1), X1 = (v2, v3), ..., X7 = (v14, v15), so
// one pass of GB over (X0, X2, X4, X6) computes GB(v0, v4, v8, v12) and
// GB(v1, v5, v9, v13) at once. X8..X13 are temporaries.

// a += b + 2 * lo32(a) * lo32(b) per 64-bit lane is BLAMKA2 below.

// Right rotations of each 64-bit lane.
#define ROR32(x) PSHUFD $0xb1, x, x
#define ROR24(x, t) MOVO x, t; PSRLQ $24, x; PSLLQ $40, t; PXOR t, x
#define ROR16(x) PSHUFLW $0x39, x, x; PSHUFHW $0x39, x, x
#define ROR63(x, t) MOVO x, t; PSRLQ $63, t; PADDQ x, x; PXOR t, x

// Two independent GB pairs, interleaved for instruction-level parallelism:
// GB(a1, b1, c1, d1) and GB(a2, b2, c2, d2), each on two columns.
#define BLAMKA2(a1, b1, a2, b2) \
	MOVO    a1, X12; \
	MOVO    a2, X13; \
	PMULULQ b1, X12; \
	PMULULQ b2, X13; \
	PADDQ   X12, X12; \
	PADDQ   X13, X13; \
	PADDQ   b1, a1; \
	PADDQ   b2, a2; \
	PADDQ   X12, a1; \
	PADDQ   X13, a2

#define GB2(a1, b1, c1, d1, a2, b2, c2, d2) \
	BLAMKA2(a1, b1, a2, b2); PXOR a1, d1; PXOR a2, d2; ROR32(d1); ROR32(d2); \
	BLAMKA2(c1, d1, c2, d2); PXOR c1, b1; PXOR c2, b2; ROR24(b1, X12); ROR24(b2, X13); \
	BLAMKA2(a1, b1, a2, b2); PXOR a1, d1; PXOR a2, d2; ROR16(d1); ROR16(d2); \
	BLAMKA2(c1, d1, c2, d2); PXOR c1, b1; PXOR c2, b2; ROR63(b1, X12); ROR63(b2, X13)

// P on X0..X7: GB on the columns, then on the diagonals. For the
// diagonals b and d are rotated by one word across register pairs:
// X8 = (v5, v6), X9 = (v7, v4), X10 = (v15, v12), X11 = (v13, v14), and
// c is (X5, X4) = (v10, v11), (v8, v9).
#define ROUND \
	GB2(X0, X2, X4, X6, X1, X3, X5, X7); \
	MOVO X2, X8; SHUFPD $1, X3, X8;   \
	MOVO X3, X9; SHUFPD $1, X2, X9;   \
	MOVO X7, X10; SHUFPD $1, X6, X10; \
	MOVO X6, X11; SHUFPD $1, X7, X11; \
	GB2(X0, X8, X5, X10, X1, X9, X4, X11); \
	MOVO X9, X2; SHUFPD $1, X8, X2;   \
	MOVO X8, X3; SHUFPD $1, X9, X3;   \
	MOVO X10, X6; SHUFPD $1, X11, X6; \
	MOVO X11, X7; SHUFPD $1, X10, X7

#define LOAD(o0, o1, o2, o3, o4, o5, o6, o7) \
	MOVOU o0(AX), X0; MOVOU o1(AX), X1; MOVOU o2(AX), X2; MOVOU o3(AX), X3; \
	MOVOU o4(AX), X4; MOVOU o5(AX), X5; MOVOU o6(AX), X6; MOVOU o7(AX), X7

#define STORE(o0, o1, o2, o3, o4, o5, o6, o7) \
	MOVOU X0, o0(AX); MOVOU X1, o1(AX); MOVOU X2, o2(AX); MOVOU X3, o3(AX); \
	MOVOU X4, o4(AX); MOVOU X5, o5(AX); MOVOU X6, o6(AX); MOVOU X7, o7(AX)

// Row i: bytes 128i .. 128i+127.
#define ROW(i) \
	LOAD(128*i, 128*i+16, 128*i+32, 128*i+48, 128*i+64, 128*i+80, 128*i+96, 128*i+112); \
	ROUND; \
	STORE(128*i, 128*i+16, 128*i+32, 128*i+48, 128*i+64, 128*i+80, 128*i+96, 128*i+112)

// Column j: the 16-byte registers at 16j, 16j+128, ..., 16j+896.
#define COL(j) \
	LOAD(16*j, 16*j+128, 16*j+256, 16*j+384, 16*j+512, 16*j+640, 16*j+768, 16*j+896); \
	ROUND; \
	STORE(16*j, 16*j+128, 16*j+256, 16*j+384, 16*j+512, 16*j+640, 16*j+768, 16*j+896)

// func compressSSE2(out, x, y *block, xor bool)
// R = x ^ y at 0(SP), Q = R at 1024(SP); P on Q's rows and columns;
// out = Q ^ R (^ out when xor).
TEXT ·compressSSE2(SB), $2048-25
	MOVQ x+8(FP), BX
	MOVQ y+16(FP), CX
	XORQ SI, SI

xorIn:
	MOVOU (BX)(SI*1), X0
	MOVOU (CX)(SI*1), X1
	PXOR  X1, X0
	MOVOU X0, 0(SP)(SI*1)
	MOVOU X0, 1024(SP)(SI*1)
	ADDQ  $16, SI
	CMPQ  SI, $1024
	JB    xorIn

	LEAQ 1024(SP), AX
	ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5); ROW(6); ROW(7)
	COL(0); COL(1); COL(2); COL(3); COL(4); COL(5); COL(6); COL(7)

	MOVQ  out+0(FP), DX
	MOVB  xor+24(FP), R8
	XORQ  SI, SI
	TESTB R8, R8
	JNZ   xorOld

xorOut:
	MOVOU 0(SP)(SI*1), X0
	MOVOU 1024(SP)(SI*1), X1
	PXOR  X1, X0
	MOVOU X0, (DX)(SI*1)
	ADDQ  $16, SI
	CMPQ  SI, $1024
	JB    xorOut
	RET

xorOld:
	MOVOU 0(SP)(SI*1), X0
	MOVOU 1024(SP)(SI*1), X1
	MOVOU (DX)(SI*1), X2
	PXOR  X1, X0
	PXOR  X2, X0
	MOVOU X0, (DX)(SI*1)
	ADDQ  $16, SI
	CMPQ  SI, $1024
	JB    xorOld
	RET
