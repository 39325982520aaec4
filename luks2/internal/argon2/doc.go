// Package argon2 implements the Argon2 memory-hard function (RFC 9106,
// version 0x13: Argon2d, Argon2i and Argon2id) over work memory that it
// allocates and releases itself, for the LUKS2 keyslot KDFs of package
// luks2.
//
// Why not golang.org/x/crypto/argon2: it allocates its m KiB of work memory
// inside the call, on the Go heap, and returns it to the garbage collector.
// A LUKS2 unlock or format then cannot keep its peak RSS near m: the heap
// grows to about twice the live size before the collector returns memory,
// two derivations in a row (format calibrates, then derives; add-key
// unlocks, then derives) hold two areas at once, and the freshly mapped heap
// takes two page faults per page (measured: 2.1-2.35 GB RSS for a 1 GiB
// argon2 format, where cryptsetup peaks at 1.06 GB). The memory also cannot
// be locked against swapping nor wiped, and the call cannot be cancelled.
// Here the work memory is an anonymous mapping outside the Go heap
// (memory_linux.go): each lane's thread locks (mlock) or populates
// (MADV_POPULATE_WRITE) its own part in parallel, so the pages are faulted
// in by the kernel in bulk; it is wiped and unmapped before Key returns.
// Peak RSS is m plus the program itself, and a second derivation reuses
// nothing. The lanes run in parallel goroutines that meet at each of the 4
// slices of every pass, where the context is checked (so a cancelled Key
// stops within one slice) and progress is reported.
//
// Key also reports the CPU time its lane threads spent, which package luks2
// uses to calibrate the time cost independently of other load on a shared
// machine.
//
// The implementation follows RFC 9106 §3 step by step and is checked against
// the RFC's test vectors (§5, with secret and associated data) and against
// x/crypto/argon2 (Argon2i and Argon2id, random parameters, and a fuzz
// target comparing both).
//
// Left out: versions other than 0x13 (0x10 is obsolete, and LUKS2 uses 0x13),
// and SIMD assembly: the scalar Go code is memory-bound at LUKS2's sizes,
// where it matches x/crypto/argon2's SSE4.1 code and libargon2.
package argon2
