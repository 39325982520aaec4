// Package tpm2 seals a disk key to the boot state with a TPM 2.0 and unseals
// it in the initrd, in a format compatible with systemd 252's
// systemd-cryptenroll/systemd-cryptsetup "systemd-tpm2" LUKS2 token.
//
// It is built on github.com/google/go-tpm (the tpm2 "direct" API). Every
// function takes a transport.TPM; nothing switches to a simulator globally.
//
// What it implements:
//
//   - Transports: the kernel resource manager /dev/tpmrm0 (fallback
//     /dev/tpm0), and swtpm over a Unix socket (raw command framing) or TCP
//     (the TCG/Microsoft simulator framing: TPM_SEND_COMMAND, locality,
//     length; response length, data, status — swtpm accepts it as well as
//     the raw framing libtss2-tcti-swtpm uses, and so does the reference
//     simulator). ParseDevice reads the --tpm2-device syntax of
//     systemd-cryptenroll. FlushAll cleans up after crashed clients where
//     no resource manager does.
//   - Sealing (Seal/Unseal): the storage primary key is created from the
//     same template systemd 252 uses (ECC P-256, AES-128-CFB, restricted
//     decrypt, empty unique; RSA-2048 as the fallback), under the owner
//     hierarchy, so the primary is reproducible and interoperable; its name,
//     computed from the public area it returns, is pinned in the token at
//     sealing and checked before unsealing (ErrPrimaryMismatch), and the
//     unseal session is salted to that verified key. Tokens of systemd
//     254+ name a persistent SRK instead ("tpm2_srk", a serialized
//     ESYS_TR: ParseSRK); those are read and written too. The secret
//     is a keyed-hash object whose policy is, in this order (TPM 2.0 Part 3,
//     23): optional PolicyAuthorize over a signed PolicyPCR, PolicyPCR over
//     the bound PCRs of one bank, optional PolicyAuthValue with
//     SHA-256(PIN) as the auth value. Create and Unseal run in sessions
//     salted with the primary key and use AES-CFB parameter encryption, so
//     the secret never crosses the bus in clear.
//   - Signed PCR policies: the .pcrsig JSON of systemd-measure
//     ({"sha256":[{"pcrs":[11],"pkfp":…,"pol":…,"sig":…}]}), RSA PKCS#1 v1.5
//     SHA-256 signatures over the PolicyPCR digest, as systemd 252 accepts.
//   - PCR 11 prediction for a UKI: systemd-stub 252 measures, for every
//     section of its fixed list (.linux .osrel .cmdline .initrd .splash .dtb
//     .pcrpkey; .pcrsig is never measured) that is present, the section name
//     with its NUL, then the section contents (VirtualSize bytes).
//   - The "systemd-tpm2" LUKS2 token JSON (Token), as systemd 252 writes it.
//
// PCR lists take systemd's literal-value syntax (ParsePCRSpec,
// "7+15:sha256=00…"): a PCR may be bound to a given value instead of its
// current one.
//
// Unseal first compares the policy digest the TPM computed with the sealed
// one, so a PCR mismatch is reported as ErrPolicyMismatch (a *PolicyError
// naming the PCRs that differ, expected and actual, when knowable) without
// an authorization failure; a wrong PIN is ErrWrongPIN and counts against the
// dictionary-attack limit (the primary and sealed objects are DA-protected,
// as systemd's); lockout is ErrLockout. Lock extends the bound PCRs after
// use so later stages of the same boot cannot unseal again.
//
// Untrusted inputs (token JSON, the blob inside it, .pcrsig JSON, UKI PE
// files) have fuzz targets.
//
// What it leaves out: the SHA-1 bank for signed policies, ECC policy
// signing keys (systemd 252 accepts RSA only), PIN salting ("tpm2_salt",
// systemd 253+), pcrlock policies, and the event log.
package tpm2
