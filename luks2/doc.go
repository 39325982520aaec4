// Package luks2 reads, creates and edits LUKS2 volumes and unlocks them in
// pure Go, so that neither the InitOS installer nor the initrd needs
// cryptsetup.
//
// It implements the LUKS2 on-disk format as specified by cryptsetup's
// "LUKS2 On-Disk Format Specification" (version 1.1.x):
//
//   - §2 the binary header pair: a primary header at offset 0 and a
//     secondary one at the end of the first metadata area (16 KiB by default;
//     16 KiB .. 4 MiB are valid), each followed by its JSON area, each with a
//     checksum (sha256 by default) over header+JSON computed with the
//     checksum field zeroed, and a sequence id (seqid) bumped on every write;
//   - §3 the JSON metadata: keyslots, tokens, segments, digests and config,
//     with 64-bit numbers encoded as JSON strings the way cryptsetup writes them;
//   - §4 keyslots of type "luks2": the LUKS1 anti-forensic splitter (AF, 4000
//     stripes, diffusion with the keyslot's hash), keyslot area encryption
//     (aes-xts-plain64, aes-cbc-essiv:sha256, aes-cbc-plain64, ... with
//     512-byte sectors and the IV counted from the start of the keyslot
//     area), PBKDFs argon2id, argon2i and pbkdf2, and the pbkdf2 digest of
//     the volume key. Hashes: every one the Go standard library and
//     golang.org/x/crypto provide under cryptsetup's names (sha1, sha2,
//     sha3, blake2b/2s, ripemd160; SupportedHashes).
//
// Operations: [Format] / [FormatFile] / [FormatDevice] (also detached
// headers; everything is computed in memory before the device is written,
// so a failure, a cancelled context or an OOM kill leaves the old volume),
// [Header.Unlock] (keyslots in priority order), [Header.AddKey] (with the
// volume key an existing passphrase unlocked), [Header.ChangeKey],
// [Header.RemoveKey], [Header.KillSlot] (area wiped and synced before the
// header drops the keyslot, as cryptsetup does), tokens as raw JSON
// ([Header.AddToken], [Header.RemoveToken], [Header.Tokens]), systemd-style
// recovery keys ([Header.AddRecoveryKey]), header backup/restore
// ([BackupFile], [RestoreFile]), recovery of a damaged primary header from
// the secondary one ([ReadHeader] reports which check failed on which copy;
// [Header.Write] repairs both), and dm-crypt activation through package
// initos/dm ([Header.Activate], [Header.CryptTarget]). The long operations
// have Context variants ([FormatContext], [Header.UnlockContext], ...) that
// stop at a safe point (between argon2 slices, before anything is written)
// and a [Progress] callback. [OpenExclusive] and [DetectSignature] give
// callers cryptsetup's checks before a format.
//
// Hostile input: every size in a header is bounded before use, by the
// specification and cryptsetup's limits (metadata 16 KiB .. 4 MiB, keyslots
// area <= 128 MiB) and by the device's size; nothing is allocated in
// proportion to a number from a header (wipes and backups stream in 1 MiB
// chunks). A feature this package does not implement does not make a
// header invalid: [Header.Unsupported] names volume-wide ones (online
// reencryption, dm-integrity), [Header.KeyslotUsable] the reason a keyslot
// cannot be opened (an unsupported hash, cipher or KDF); the other
// keyslots keep working.
//
// KDF calibration follows cryptsetup's (lib/crypto_backend/pbkdf_check.c):
// for argon2, memory (at most 1 GiB and half the RAM) and then time cost
// are scaled until one derivation takes --iter-time; unlike cryptsetup it
// measures the KDF threads' CPU time divided by the lanes that run at
// once, so that a format on a busy machine does not pick weaker costs.
//
// Argon2 is internal/argon2, our RFC 9106 implementation (its package doc
// says why: x/crypto/argon2 allocates its memory on the Go heap, which
// doubled the peak RSS; ours maps, locks and wipes it, so the peak RSS of
// an unlock, add-key or format stays within 1.05x the memory cost).
//
// Writes update both header copies: the secondary first, then the primary.
// Keyslot material is always written into an area no valid header refers to
// before a header referencing it is written, so a crash at any point leaves
// at least one valid header copy describing a consistent volume: a crash
// while writing the secondary leaves the old primary (still valid, the
// secondary fails its checksum or carries a lower seqid); a crash while
// writing the primary leaves the new secondary (higher seqid, valid checksum).
// Readers pick the valid copy with the highest seqid.
//
// Secrets (volume keys, PBKDF output, AF-split material) live in mlock'ed
// buffers ([Secret]) that are zeroed when released; argon2's work memory is
// locked and wiped too. Limits: Go may copy values (e.g. inside crypto/aes
// key schedules, the BLAKE2b and HMAC states that hash the passphrase, the
// string crypto/pbkdf2 takes, and the passphrase slices callers pass in),
// which this package cannot lock or wipe; see [Secret].
//
// Library choice: the design named github.com/anatol/luks.go, which unlocks
// LUKS volumes but cannot create or edit headers. It is also not available
// to this build (the module proxy refuses it), so this package is our own
// implementation of the format from the specification, cross-checked
// against cryptsetup 2.6 as an oracle in the tests. Primitives come from
// the standard library and golang.org/x/crypto (pbkdf2 via crypto/pbkdf2,
// xts, blake2, ripemd160); argon2 is ours (see above).
//
// Deliberately left out (each reported by name, never as a damaged
// header): LUKS1 headers, online reencryption (keyslots of type
// "reencrypt", mandatory requirements such as "online-reencrypt-v2",
// several segments), dm-integrity segments (authenticated encryption),
// keyslot types other than "luks2", keyslot ciphers other than AES, the
// hashes whirlpool, sm3 and stribog, and argon2 "cpus" above 16.
package luks2
