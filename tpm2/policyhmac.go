package tpm2

import (
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// HMACPolicy is the policy of a PolicyHMAC key: a signed PCR policy (the
// owner's PCR key over PublicKeyPCRs) and PCRs bound by value.
type HMACPolicy struct {
	// PublicKey verifies the signed policy (the UKI's .pcrpkey). Required:
	// a key anyone could sign for would bind nothing.
	PublicKey *rsa.PublicKey
	// PublicKeyPCRs are covered by signatures; nil means {11}.
	PublicKeyPCRs []int
	// PCRs are bound by value: Values where given, else their current
	// value. nil means {7}.
	PCRs   []int
	Values map[int][]byte
	// Bank of the PCRs; zero means SHA256.
	Bank Bank
	// PrimaryName pins the storage primary key the session is salted to
	// (nil: not pinned).
	PrimaryName []byte
}

// maxHMACData bounds PolicyHMAC's data (the TPM's MAX_DIGEST_BUFFER is
// 1024 bytes).
const maxHMACData = 1024

// PolicyHMAC returns HMAC-SHA256 of data keyed with a key that the TPM
// derives from its owner seed, label and the policy p, and uses only when
// its state satisfies p: a per-TPM secret that only a boot in the signed
// state can use, and never leaves the TPM. The same TPM, label and policy
// always give the same key; a cleared owner hierarchy gives another.
//
// Steps: 1. create the storage primary (pinned) for a salted session;
// 2. read the PCRs bound by current value and compute the policy digest
// (PolicyAuthorize over the signing key, then PolicyPCR), as Seal does;
// 3. TPM2_CreatePrimary of a keyed-hash HMAC key under the owner hierarchy
// with that authPolicy (adminWithPolicy, no userWithAuth, noDA) and
// SHA-256(label) as its unique field; 4. start a policy session salted to
// the storage primary, encrypting data in and the HMAC out; 5. replay the
// policy with the signature (.pcrsig JSON); 6. TPM2_HMAC; 7. flush.
//
// It also returns the storage primary's name, to pin on the next call.
// Errors wrap ErrPolicyMismatch, ErrNoSignature, ErrPrimaryMismatch.
func PolicyHMAC(t transport.TPM, p HMACPolicy, label, data, signature []byte) (mac, primaryName []byte, err error) {
	t = withRetry(t)
	if p.PublicKey == nil {
		return nil, nil, fmt.Errorf("policy HMAC: no policy signing key")
	}
	if len(signature) == 0 {
		return nil, nil, fmt.Errorf("policy HMAC: %w: no signed PCR policy (.pcrsig) given", ErrNoSignature)
	}
	if len(data) > maxHMACData {
		return nil, nil, fmt.Errorf("policy HMAC: %d bytes of data, at most %d", len(data), maxHMACData)
	}
	s, spec, err := p.sealed(t)
	if err != nil {
		return nil, nil, fmt.Errorf("policy HMAC: %w", err)
	}
	srk, err := createPrimary(t, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("policy HMAC: %w", err)
	}
	defer flush(t, srk.handle)
	if err := srk.pin(p.PrimaryName); err != nil {
		return nil, nil, fmt.Errorf("policy HMAC: %w", err)
	}
	key, err := createHMACKey(t, spec, label)
	if err != nil {
		return nil, nil, fmt.Errorf("policy HMAC: %w", err)
	}
	defer flush(t, key.ObjectHandle)
	mac, err = hmacWithPolicy(t, s, srk, key, data, signature)
	if err != nil {
		return nil, nil, fmt.Errorf("policy HMAC: %w", err)
	}
	return mac, srk.name.Buffer, nil
}

// sealed describes p as a Sealed object (for the policy replay and error
// reports) and returns its policy spec.
func (p HMACPolicy) sealed(t transport.TPM) (*Sealed, policySpec, error) {
	pcrs, signed := p.PCRs, p.PublicKeyPCRs
	if pcrs == nil {
		pcrs = []int{7}
	}
	if signed == nil {
		signed = []int{11}
	}
	bank := p.Bank
	if bank == 0 {
		bank = SHA256
	}
	values, err := ReadPCRs(t, bank, pcrs)
	if err != nil {
		return nil, policySpec{}, err
	}
	maps.Copy(values, p.Values)
	pem, err := EncodePublicKeyPEM(p.PublicKey)
	if err != nil {
		return nil, policySpec{}, err
	}
	name, err := PublicKeyName(p.PublicKey)
	if err != nil {
		return nil, policySpec{}, err
	}
	spec := policySpec{bank: bank, pcrs: slices.Sorted(slices.Values(pcrs)), values: values, pubKeyName: name}
	digest, err := spec.digest()
	if err != nil {
		return nil, policySpec{}, err
	}
	s := &Sealed{Bank: bank, PCRs: spec.pcrs, PCRValues: values, PublicKey: pem, PublicKeyPCRs: signed, PolicyHash: digest}
	return s, spec, nil
}

// createHMACKey creates the policy-gated keyed-hash primary.
func createHMACKey(t transport.TPM, spec policySpec, label []byte) (*tpm2.CreatePrimaryResponse, error) {
	digest, err := spec.digest()
	if err != nil {
		return nil, err
	}
	unique := sha256.Sum256(label)
	tmpl := tpm2.TPMTPublic{
		Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			AdminWithPolicy: true, NoDA: true, SignEncrypt: true},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: digest},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgHMAC,
				Details: tpm2.NewTPMUSchemeKeyedHash(tpm2.TPMAlgHMAC, &tpm2.TPMSSchemeHMAC{HashAlg: tpm2.TPMAlgSHA256})},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{Buffer: unique[:]}),
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t)
	if err != nil {
		return nil, classify("create the HMAC key", err)
	}
	return rsp, nil
}

// hmacWithPolicy satisfies the key's policy in a salted session and
// computes the HMAC, with data and result encrypted on the bus.
func hmacWithPolicy(t transport.TPM, s *Sealed, srk *primary, key *tpm2.CreatePrimaryResponse, data, sig []byte) ([]byte, error) {
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srk.handle, srk.public), tpm2.AESEncryption(128, tpm2.EncryptInOut))
	if err != nil {
		return nil, classify("start policy session", err)
	}
	defer closeSess()
	if err := s.replayPolicy(t, sess.Handle(), UnsealOptions{Signature: sig}); err != nil {
		return nil, err
	}
	rsp, err := tpm2.Hmac{
		Handle:  tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: sess},
		Buffer:  tpm2.TPM2BMaxBuffer{Buffer: data},
		HashAlg: tpm2.TPMAlgSHA256,
	}.Execute(t)
	if err != nil {
		return nil, classify("HMAC", err)
	}
	return rsp.OutHMAC.Buffer, nil
}
