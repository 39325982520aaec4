// Package authenticode computes, creates, verifies and removes Authenticode
// signatures of PE32+ images (initos/pecoff), the signatures UEFI Secure
// Boot checks before it runs an EFI binary such as a UKI.
//
// Specs: Microsoft "Windows Authenticode Portable Executable Signature
// Format" (the image hash, section "Calculating the PE Image Hash", and the
// SpcIndirectDataContent structure), RFC 2315 (PKCS #7 SignedData) and the
// UEFI specification 2.10, section 32.5 (db/dbx checks: a signature is
// accepted when a trusted certificate is the signer or one of its issuers;
// validity periods are not checked, as firmware has no trusted clock).
//
// The PKCS #7 encoding is our own, on encoding/asn1: the pkcs7 modules one
// could fetch (go.mozilla.org/pkcs7, smallstep/pkcs7) sign id-data content
// wrapped in an OCTET STRING, while Authenticode needs SpcIndirectDataContent
// embedded as a SEQUENCE and its messageDigest taken over the SEQUENCE's
// contents only. foxboron/go-uefi, named by the design, is not reachable
// (module proxy: 403); nothing was copied from it or any other
// implementation.
//
// Signing is deterministic: RSA PKCS #1 v1.5 with SHA-256 and no signing
// time unless one is asked for (SOURCE_DATE_EPOCH), so the same inputs give
// the same bytes. Signing keys are any crypto.Signer with an RSA public key
// (2048, 3072 or 4096 bits), so TPM or HSM keys fit.
//
// Reading follows what firmware and the common signing tools produce: the
// bCertificate of a WIN_CERTIFICATE may carry zero padding after the DER
// (signtool and osslsigncode count it in dwLength); nested signatures (the
// SPC_NESTED_SIGNATURE unauthenticated attribute, signtool /as,
// osslsigncode -nest) are decoded into Signature.Nested and can be checked
// on their own, but Verify, like EDK2, trusts an image only through the
// outer signature of a certificate table entry. Each entry is decoded on
// its own (Entries), so one malformed entry does not hide the others.
//
// Left out: page hashes, timestamps (countersignatures), MD5 digests and
// ECDSA (not accepted by UEFI firmware), and dbx (revocation) checks.
package authenticode
