package tpm2

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// UnsealOptions carries what the user or the boot supplies at unseal time.
type UnsealOptions struct {
	// PIN, required when the object was sealed with one.
	PIN []byte
	// Signature is the .pcrsig JSON, required for a signed policy.
	Signature []byte
}

// Unseal recovers the secret of s if the TPM's state satisfies its policy.
//
// Steps: 1. recreate the primary key from the template and check its name
// against the pinned one (or check the persistent SRK's name); 2. load the object;
// 3. start a policy session salted with the primary key that encrypts the
// response parameter (the secret) with AES-CFB; 4. replay the policy
// (PolicyAuthorize with a TPM-verified signature, PolicyPCR,
// PolicyAuthValue); 5. compare the session digest with the sealed
// PolicyHash, so a PCR mismatch is reported without touching the
// dictionary-attack counter; 6. TPM2_Unseal; 7. flush.
//
// Errors wrap ErrPolicyMismatch, ErrWrongPIN, ErrLockout, ErrNoSignature.
func Unseal(t transport.TPM, s *Sealed, opts UnsealOptions) ([]byte, error) {
	t = withRetry(t)
	if err := s.check(opts); err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	p, err := s.parentOf(t)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	defer p.close(t)
	obj, err := load(t, p, s)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	defer flush(t, obj.ObjectHandle)
	var auth []byte
	if s.PIN {
		auth = hashPIN(opts.PIN)
	}
	sess, closeSess, err := tpm2.PolicySession(t, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(p.handle, p.public), tpm2.AESEncryption(128, tpm2.EncryptOut), tpm2.Auth(auth))
	if err != nil {
		return nil, classify("unseal: start policy session", err)
	}
	defer closeSess()
	if err := s.replayPolicy(t, sess.Handle(), opts); err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.ObjectHandle, Name: obj.Name, Auth: sess}}.Execute(t)
	if err != nil {
		return nil, classify("unseal", err)
	}
	return rsp.OutData.Buffer, nil
}

func (s *Sealed) check(opts UnsealOptions) error {
	switch {
	case len(s.Private) == 0 || len(s.Public) == 0:
		return errors.New("sealed object has no private or public part")
	case s.PIN && opts.PIN == nil:
		return fmt.Errorf("%w: the key was sealed with a PIN and none was given", ErrWrongPIN)
	case s.PublicKey != nil && len(s.PublicKeyPCRs) > 0 && opts.Signature == nil:
		return fmt.Errorf("%w: the key has a signed PCR policy and no signature was given", ErrNoSignature)
	}
	if err := checkPCRs(s.PCRs); err != nil {
		return err
	}
	return checkPCRs(s.PublicKeyPCRs)
}

func load(t transport.TPM, p *primary, s *Sealed) (*tpm2.LoadResponse, error) {
	priv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](s.Private)
	if err != nil {
		return nil, fmt.Errorf("load sealed object: private part: %w", err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](s.Public)
	if err != nil {
		return nil, fmt.Errorf("load sealed object: public part: %w", err)
	}
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    *priv,
		InPublic:     *pub,
	}.Execute(t)
	if err != nil && !errors.Is(classify("", err), ErrLockout) {
		return nil, classify("load sealed object (was it sealed by this TPM, with this primary algorithm?)", err)
	}
	if err != nil {
		return nil, classify("load sealed object", err)
	}
	return rsp, nil
}

// replayPolicy runs the policy commands in the order digest() hashes them.
func (s *Sealed) replayPolicy(t transport.TPM, sess tpm2.TPMHandle, opts UnsealOptions) error {
	if s.PublicKey != nil && len(s.PublicKeyPCRs) > 0 {
		if err := s.authorize(t, sess, opts.Signature); err != nil {
			return err
		}
	}
	if len(s.PCRs) > 0 {
		_, err := tpm2.PolicyPCR{PolicySession: sess, Pcrs: selection(s.Bank, s.PCRs)}.Execute(t)
		if err != nil {
			return classify("PolicyPCR", err)
		}
	}
	if s.PIN {
		if _, err := (tpm2.PolicyAuthValue{PolicySession: sess}).Execute(t); err != nil {
			return classify("PolicyAuthValue", err)
		}
	}
	got, err := tpm2.PolicyGetDigest{PolicySession: sess}.Execute(t)
	if err != nil {
		return classify("PolicyGetDigest", err)
	}
	if len(s.PolicyHash) > 0 && !bytes.Equal(got.PolicyDigest.Buffer, s.PolicyHash) {
		return s.policyError(t, got.PolicyDigest.Buffer)
	}
	return nil
}

// authorize satisfies PolicyAuthorize: PolicyPCR over the signed PCRs, the
// resulting digest's signature verified by the TPM (a ticket), then
// PolicyAuthorize with that ticket (Part 3, 23.16).
func (s *Sealed) authorize(t transport.TPM, sess tpm2.TPMHandle, sigJSON []byte) error {
	pub, err := ParsePublicKeyPEM(s.PublicKey)
	if err != nil {
		return err
	}
	sigs, err := ParsePCRSignature(sigJSON)
	if err != nil {
		return err
	}
	tmpl, err := PublicKeyTemplate(pub)
	if err != nil {
		return err
	}
	key, err := tpm2.LoadExternal{InPublic: tpm2.New2B(tmpl), Hierarchy: tpm2.TPMRHOwner}.Execute(t)
	if err != nil {
		return classify("load policy public key", err)
	}
	defer flush(t, key.ObjectHandle)
	if _, err := (tpm2.PolicyPCR{PolicySession: sess, Pcrs: selection(s.Bank, s.PublicKeyPCRs)}).Execute(t); err != nil {
		return classify("PolicyPCR (signed PCRs)", err)
	}
	approved, err := tpm2.PolicyGetDigest{PolicySession: sess}.Execute(t)
	if err != nil {
		return classify("PolicyGetDigest (signed PCRs)", err)
	}
	fp, err := Fingerprint(pub)
	if err != nil {
		return err
	}
	pol := approved.PolicyDigest.Buffer
	sig, err := sigs.find(s.Bank, s.PublicKeyPCRs, fp, pol)
	if r, rpol, rsig, ok := sigs.findRollback(s.Bank, s.PublicKeyPCRs, fp, pol); err != nil && ok {
		// A policy with a security version: PolicyNV, then authorize it.
		if err := policyRollback(t, sess, r); err != nil {
			return err
		}
		pol, sig, err = rpol, rsig, nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w%s", ErrPolicyMismatch, err, signedValues(t, s.Bank, s.PublicKeyPCRs, fp))
	}
	return policyAuthorize(t, sess, key, pol, sig)
}

func policyAuthorize(t transport.TPM, sess tpm2.TPMHandle, key *tpm2.LoadExternalResponse, approved, sig []byte) error {
	d := sha256.Sum256(approved)
	ticket, err := tpm2.VerifySignature{
		KeyHandle: tpm2.NamedHandle{Handle: key.ObjectHandle, Name: key.Name},
		Digest:    tpm2.TPM2BDigest{Buffer: d[:]},
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgRSASSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
				Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: sig},
			}),
		},
	}.Execute(t)
	if err != nil {
		return fmt.Errorf("%w: the TPM rejected the PCR policy signature: %w", ErrPolicyMismatch, classify("VerifySignature", err))
	}
	_, err = tpm2.PolicyAuthorize{
		PolicySession:  sess,
		ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
		KeySign:        key.Name,
		CheckTicket:    ticket.Validation,
	}.Execute(t)
	return classify("PolicyAuthorize", err)
}

// signedValues describes the current values of the signed PCRs for an
// error: " (PCR 11 is …; no signature by key …)".
func signedValues(t transport.TPM, bank Bank, pcrs []int, fp []byte) string {
	cur, err := ReadPCRs(t, bank, pcrs)
	if err != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	for _, p := range pcrs {
		fmt.Fprintf(&b, "PCR %d is %x; ", p, cur[p])
	}
	fmt.Fprintf(&b, "no signature by the enrolled key %x covers this value)", fp)
	return b.String()
}
