package tpm2

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// ErrRolledBack reports that the TPM refused a signed policy because its
// security version is below the minimum in the anti-rollback NV index:
// the UKI was retired.
var ErrRolledBack = errors.New("security version below the TPM's anti-rollback minimum")

// Rollback makes a signed PCR policy carry a security version: the
// approved policy is PolicyPCR followed by TPM2_PolicyNV(index, operandB =
// Version, offset 0, TPM_EO_UNSIGNED_LE), which holds only while the NV
// minimum is at most Version. Raising the minimum makes the TPM itself
// refuse every policy signed for a lower version.
type Rollback struct {
	Index   tpm2.TPMHandle // 0: RollbackIndex
	Version uint64
}

func (r Rollback) index() tpm2.TPMHandle {
	if r.Index == 0 {
		return RollbackIndex
	}
	return r.Index
}

// operand is PolicyNV's operandB: the version, big-endian.
func (r Rollback) operand() []byte { return binary.BigEndian.AppendUint64(nil, r.Version) }

// ExtendRollback returns the policy digest after TPM2_PolicyNV of r on a
// session whose digest is prev (TPM 2.0 Part 3, 23.9):
//
//  1. args = SHA-256(operandB || offset (UINT16) || operation (UINT16));
//  2. digest = SHA-256(prev || TPM_CC_PolicyNV || args || nvIndex.Name).
func ExtendRollback(prev []byte, r Rollback) ([]byte, error) {
	name, err := RollbackName(r.index())
	if err != nil {
		return nil, err
	}
	a := sha256.New()
	a.Write(r.operand())
	a.Write([]byte{0, 0}) // offset 0
	a.Write(binary.BigEndian.AppendUint16(nil, uint16(tpm2.TPMEOUnsignedLE)))
	d := sha256.New()
	d.Write(prev)
	d.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMCCPolicyNV)))
	d.Write(a.Sum(nil))
	d.Write(name)
	return d.Sum(nil), nil
}

// SignPCRPolicyEntryRollback is SignPCRPolicyEntry for a policy that also
// carries r: the approved policy is PolicyPCR then PolicyNV, and the entry
// names the index and the version (initos-* fields systemd ignores) so that
// Unseal can replay it. systemd's tools cannot use such an entry: their
// PolicyPCR-only digest matches no "pol".
func SignPCRPolicyEntryRollback(signer crypto.Signer, bank Bank, pcrs []int, values map[int][]byte, r Rollback) (PCRSignatureEntry, error) {
	pol, err := PolicyPCRDigest(bank, pcrs, values)
	if err != nil {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: %w", err)
	}
	if pol, err = ExtendRollback(pol, r); err != nil {
		return PCRSignatureEntry{}, fmt.Errorf("sign PCR policy: %w", err)
	}
	e, err := signEntry(signer, pcrs, pol)
	if err != nil {
		return e, err
	}
	v := r.Version
	e.RollbackIndex, e.SecurityVersion = fmt.Sprintf("%#08x", uint32(r.index())), &v
	return e, nil
}

// rollback returns the entry's anti-rollback parameters, if it has any.
func (e PCRSignatureEntry) rollback() (Rollback, bool, error) {
	if e.RollbackIndex == "" && e.SecurityVersion == nil {
		return Rollback{}, false, nil
	}
	if e.RollbackIndex == "" || e.SecurityVersion == nil {
		return Rollback{}, false, errors.New("initos-rollback-index and initos-security-version go together")
	}
	h, err := strconv.ParseUint(e.RollbackIndex, 0, 32)
	if err != nil || h>>24 != 0x01 {
		return Rollback{}, false, fmt.Errorf("initos-rollback-index %q is not an NV index handle (0x01xxxxxx)", e.RollbackIndex)
	}
	return Rollback{Index: tpm2.TPMHandle(h), Version: *e.SecurityVersion}, true, nil
}

// findRollback looks, among the entries for bank, pcrs and key fp, for one
// whose policy is PolicyPCR (approved, the session's digest so far)
// followed by PolicyNV of its rollback parameters. It returns the entry's
// parameters, its approved digest and signature.
func (s PCRSignature) findRollback(bank Bank, pcrs []int, fp, approved []byte) (Rollback, []byte, []byte, bool) {
	for _, e := range s.matching(bank, pcrs, fp) {
		r, ok, err := e.rollback()
		if err != nil || !ok {
			continue
		}
		want, err := ExtendRollback(approved, r)
		if err != nil {
			continue
		}
		pol, err1 := hex.DecodeString(e.Pol)
		sig, err2 := base64.StdEncoding.DecodeString(e.Sig)
		if err1 == nil && err2 == nil && bytes.Equal(pol, want) {
			return r, want, sig, true
		}
	}
	return Rollback{}, nil, nil, false
}

// policyRollback runs TPM2_PolicyNV of r on the session: the TPM compares
// the index's minimum with r.Version. A refusal is ErrRolledBack, naming
// the minimum when the index can be read.
func policyRollback(t transport.TPM, sess tpm2.TPMHandle, r Rollback) error {
	h := r.index()
	name, defined, err := checkRollbackIndex(t, h)
	if err != nil {
		return err
	}
	if !defined {
		return fmt.Errorf("%w: the signed policy needs the anti-rollback NV index %#08x, and this TPM has none (it is defined at install or by the first boot)", ErrPolicyMismatch, uint32(h))
	}
	nh := tpm2.TPM2BName{Buffer: name}
	_, err = tpm2.PolicyNV{
		AuthHandle:    tpm2.AuthHandle{Handle: h, Name: nh, Auth: tpm2.PasswordAuth(nil)},
		NVIndex:       tpm2.NamedHandle{Handle: h, Name: nh},
		PolicySession: sess,
		OperandB:      tpm2.TPM2BOperand{Buffer: r.operand()},
		Operation:     tpm2.TPMEOUnsignedLE,
	}.Execute(t)
	if errors.Is(err, tpm2.TPMRCPolicy) || errors.Is(err, tpm2.TPMRCPolicyFail) {
		min := "a higher minimum"
		if st, rerr := ReadMinVersion(t, h); rerr == nil {
			min = fmt.Sprintf("the minimum %d", st.Min)
		}
		return fmt.Errorf("%w: %w: the UKI's signed policy is for security version %d and NV index %#08x holds %s (PolicyNV refused: %w)",
			ErrPolicyMismatch, ErrRolledBack, r.Version, uint32(h), min, err)
	}
	return classify("PolicyNV (anti-rollback)", err)
}
