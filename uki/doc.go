// Package uki builds Unified Kernel Images whose PCR 11 value is signed,
// the way ukify's --pcr-private-key/--pcr-public-key options and
// `systemd-measure sign` do: a machine that sealed its disk key to a signed
// PCR 11 policy (tpm2.SealOptions.PublicKey) keeps unsealing after an
// upgrade to any UKI the same key signed, without a reseal.
//
// It is the orchestration between two libraries that know nothing of each
// other: initos/pecoff lays the sections out on systemd-stub, initos/tpm2
// predicts PCR 11 and signs PolicyPCR digests. Build follows these steps:
//
//  1. put the PEM public key in .pcrpkey, which systemd-stub measures, so it
//     must be in place before the prediction;
//  2. lay out every measured section (.linux .osrel .cmdline .initrd
//     .splash .dtb .pcrpkey) with pecoff.BuildUKI;
//  3. predict PCR 11 with tpm2.PredictPCR11 for each phase path (default:
//     the value systemd-stub 252 leaves at boot, before any
//     systemd-pcrphase word: the InitOS initrd measures none);
//  4. sign the PolicyPCR digest of each value (tpm2.SignPCRPolicyEntry,
//     RSASSA-PKCS1-v1_5 SHA-256) and encode the .pcrsig JSON;
//  5. lay the UKI out again with .pcrsig, which is not measured, and check
//     that the measured sections still predict the same value.
//
// Specs: the UAPI Group "Unified Kernel Image" specification (sections and
// PCR 11), systemd 252's systemd-stub(7) and systemd-measure(1), whose
// `sign` output is the oracle of the tests (same JSON byte for byte: the
// signatures are deterministic).
//
// Left out: the SHA-1, SHA-384 and SHA-512 banks (tpm2.PredictPCR11 and
// systemd 252's signed policies are SHA-256 only), several key pairs per
// UKI (ukify can sign different phases with different keys), and signing
// with a key held by a TPM or HSM (any crypto.Signer with an RSA public key
// works, so that is a caller's choice).
package uki
