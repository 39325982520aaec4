// Package enroll is the glue between a LUKS2 volume (package luks2) and a
// TPM 2.0 (package tpm2): it enrolls a TPM-sealed keyslot with a
// systemd-tpm2 token, unlocks a volume with such a token, measures an
// opened volume into PCR 15, adds systemd-style recovery keys, and reseals
// the TPM token after a recovery. initos-init (the initrd), the installer
// and the SSH control plane share it, so it stays small: it needs luks2,
// tpm2 (go-tpm) and efivar, and no dm, no flags, no files.
//
// Formats and protocols, all those of systemd so that its tools and ours
// open each other's volumes:
//
//   - The keyslot holds base64 of a 32-byte secret sealed by the TPM,
//     with PBKDF2-SHA512 at 1000 iterations (the secret has full entropy),
//     as systemd-cryptenroll --tpm2-device (src/cryptenroll/cryptenroll-tpm2.c).
//   - The "systemd-tpm2" token of systemd 252 (tpm2.Token), plus
//     initos-* fields systemd ignores: the pinned storage primary key's
//     name, and the PCR values the policy was computed from (to say which
//     PCR differs when unsealing fails).
//   - Literal PCR values ("15:sha256=0000…", systemd 255's --tpm2-pcrs
//     syntax): the default policy binds PCR 15 to all-zero, which holds in
//     the initrd until the first volume opens.
//   - MeasureVolume extends PCR 15 as systemd-cryptsetup's
//     tpm2-measure-pcr=yes does (systemd 253+, src/cryptsetup/cryptsetup.c
//     measure_volume_key): HMAC(volume key, "cryptsetup:NAME:UUID") with
//     each bank's hash, so the volume key never crosses the bus.
//   - Bindings (Bind, VerifyBinding; an "initos-binding" token, ours):
//     a tag over the volume's UUID and key that only a boot in the owner's
//     signed state can compute (tpm2.PolicyHMAC), so that initos-init
//     refuses a substituted volume whose systemd-tpm2 token an attacker
//     forged to our policy (see BindingTokenType).
//   - Recovery keys: systemd-cryptenroll --recovery-key's format (64 modhex
//     characters in 8 groups, PBKDF2 keyslot, "systemd-recovery" token).
//
// Secrets (volume keys, unsealed secrets, the keyslot passphrase made
// from them) are held in luks2.Secret: mlock'ed, zeroed on Destroy.
//
// What it leaves out: FIDO2 and PKCS#11 tokens, TPM2 PINs with systemd
// 253's salt ("tpm2_salt"), pcrlock policies, the userspace measurement
// log systemd-pcrextend keeps in /run/log/systemd/tpm2-measure.log.
package enroll
