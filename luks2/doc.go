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
//     stripes, sha256 diffusion), keyslot area encryption (aes-xts-plain64,
//     aes-cbc-essiv:sha256, aes-cbc-plain64, ... with 512-byte sectors and the
//     IV counted from the start of the keyslot area), PBKDFs argon2id,
//     argon2i and pbkdf2, and the pbkdf2 digest of the volume key.
//
// Operations: [Format] / [FormatFile] (also detached headers),
// [Header.Unlock] (keyslots in priority order), [Header.AddKey] (with the
// volume key an existing passphrase unlocked), [Header.ChangeKey],
// [Header.RemoveKey], [Header.KillSlot], tokens as raw JSON
// ([Header.AddToken], [Header.RemoveToken], [Header.Tokens]), systemd-style
// recovery keys ([Header.AddRecoveryKey]), header backup/restore
// ([BackupFile], [RestoreFile]), recovery of a damaged primary header from
// the secondary one ([ReadHeader] reports which check failed on which copy;
// [Header.Write] repairs both), and dm-crypt activation through package
// initos/dm ([Header.Activate], [Header.CryptTarget]).
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
// buffers ([Secret]) that are zeroed when released. Limits: Go may copy
// values (e.g. inside crypto/aes key schedules, argon2's internal state and
// the passphrase slices callers pass in), which this package cannot lock or
// wipe; see [Secret].
//
// Library choice: the design named github.com/anatol/luks.go, which unlocks
// LUKS volumes but cannot create or edit headers. It is also not available
// to this build (the module proxy refuses it), so this package is our own
// implementation of the format from the specification, cross-checked
// against cryptsetup 2.6 as an oracle in the tests. Primitives come from
// the standard library and golang.org/x/crypto (argon2, pbkdf2 via
// crypto/pbkdf2, xts).
//
// Deliberately left out: LUKS1 headers, online reencryption (keyslots of
// type "reencrypt" and mandatory requirements such as "online-reencrypt" are
// refused), dm-integrity segments (authenticated encryption), keyslot
// types other than "luks2", and the argon2 "cpus" above 16.
package luks2
