// Package verity builds, verifies and describes dm-verity hash trees in the
// on-disk format written by cryptsetup's `veritysetup format`.
//
// # What it implements
//
//   - The hash tree of the kernel's dm-verity target
//     (Documentation/admin-guide/device-mapper/verity.rst, "Hash tree") and
//     of cryptsetup (docs/on-disk-format "DMVerity"): data blocks are hashed
//     with a salt into the leaf level; each level is packed into hash
//     blocks, each block padded with zeros; the next level hashes those
//     blocks, until a level fits in one block, whose hash is the root hash.
//     Levels are stored top level first, right after the superblock.
//   - Hash type 1 (normal: salt, then block; each digest in a power-of-two
//     slot) and hash type 0 (Chrome OS: block, then salt; digests packed).
//   - Hash algorithms sha1, sha256 and sha512; data and hash block sizes
//     512..65536 (powers of two).
//   - The 512-byte version 1 superblock ("verity\0\0"), or none
//     (--no-superblock), at a hash offset: the tree may live in its own
//     file or after the data in the same file.
//   - Verification that names the corrupt data block or hash block
//     (*CorruptionError, ErrCorrupt), and a data device too small for its
//     tree reported as such before any read (ErrShortData: "data device is
//     N bytes, superblock needs M").
//   - Crash-safe output: the superblock is written last, and when the hash
//     device can be synced (*os.File) the tree is synced before it and the
//     superblock after, as veritysetup does. FormatContext and
//     VerifyContext stop between units of work when their context is done
//     and report progress.
//   - The device-mapper table ("0 <sectors> verity 1 ...") and the kernel
//     command-line form (dm-mod.create=...) for a tree.
//
// Given the same salt and UUID the hash area is byte-identical to the one
// veritysetup 2.6 writes; the differential tests compare both tools.
//
// # Performance
//
// Format and Verify stream the data through an io.ReaderAt in 2 MiB reads
// (an *os.File on Linux is mapped read-only instead, which saves the copy;
// hashed windows are dropped from the page table again, 32 MiB at a time)
// and hash the leaf level on GOMAXPROCS workers, each taking whole runs of
// leaf hash blocks and reusing its buffers and hash.Hash. Only the digests
// of the leaf hash blocks and the upper levels are kept in memory:
// dataSize / dataBlockSize / hashesPerBlock digests (640 KiB for 10 GiB
// with the defaults).
//
// # Left out
//
// Forward error correction (--fec-device), root hash signatures
// (--root-hash-signature) and activating a device: the dm package opens the
// tree with the parameters from Result.TargetParams. No library is used:
// there is no maintained pure-Go veritysetup-compatible writer, and the
// format is small.
package verity
