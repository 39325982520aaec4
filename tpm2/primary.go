package tpm2

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// PrimaryAlg is the algorithm of the storage primary key ("ecc", "rsa").
type PrimaryAlg = tpm2.TPMAlgID

// Primary algorithms.
const (
	PrimaryECC PrimaryAlg = tpm2.TPMAlgECC
	PrimaryRSA PrimaryAlg = tpm2.TPMAlgRSA
)

// PrimaryAlgName returns systemd's name for a ("ecc", "rsa").
func PrimaryAlgName(a PrimaryAlg) string {
	switch a {
	case PrimaryECC:
		return "ecc"
	case PrimaryRSA:
		return "rsa"
	}
	return fmt.Sprintf("alg-0x%04x", uint16(a))
}

// ParsePrimaryAlg parses "ecc" or "rsa".
func ParsePrimaryAlg(s string) (PrimaryAlg, error) {
	switch s {
	case "ecc":
		return PrimaryECC, nil
	case "rsa":
		return PrimaryRSA, nil
	}
	return 0, fmt.Errorf("parse primary algorithm %q: want ecc or rsa", s)
}

// storageAttrs are the attributes of systemd 252's primary: a restricted
// decryption (storage) key, userWithAuth, and (unlike the TCG SRK template)
// no noDA.
var storageAttrs = tpm2.TPMAObject{
	FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
	UserWithAuth: true, Restricted: true, Decrypt: true,
}

var aes128CFB = tpm2.TPMTSymDefObject{
	Algorithm: tpm2.TPMAlgAES,
	KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(128)),
	Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
}

// PrimaryTemplate returns the template systemd 252 (tpm2_make_primary)
// creates its primary key from: ECC NIST P-256 or RSA 2048, SHA-256 name,
// AES-128-CFB for children, null scheme and KDF, empty unique field. The
// same template on the same TPM yields the same key, so the key is never
// stored.
func PrimaryTemplate(a PrimaryAlg) (tpm2.TPMTPublic, error) {
	switch a {
	case PrimaryECC:
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: storageAttrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Symmetric: aes128CFB,
				Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
				CurveID:   tpm2.TPMECCNistP256,
				KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
		}, nil
	case PrimaryRSA:
		return tpm2.TPMTPublic{
			Type: tpm2.TPMAlgRSA, NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: storageAttrs,
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
				Symmetric: aes128CFB,
				Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
				KeyBits:   2048,
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
		}, nil
	}
	return tpm2.TPMTPublic{}, fmt.Errorf("primary template: unsupported algorithm %s", PrimaryAlgName(a))
}

// primary is a loaded storage primary key.
type primary struct {
	alg        PrimaryAlg
	handle     tpm2.TPMHandle
	name       tpm2.TPM2BName
	public     tpm2.TPMTPublic
	persistent bool // an SRK at a persistent handle: never flushed
}

// close flushes a transient primary.
func (p *primary) close(t transport.TPM) {
	if !p.persistent {
		flush(t, p.handle)
	}
}

// parentFor returns the key to seal under: the persistent SRK (created if
// missing) with srk, else a transient primary of algorithm a.
func parentFor(t transport.TPM, a PrimaryAlg, srk bool) (*primary, *SRK, error) {
	if !srk {
		p, err := createPrimary(t, a)
		return p, nil, err
	}
	k, err := GetOrCreateSRK(t)
	if err != nil {
		return nil, nil, err
	}
	p, err := k.primary(t)
	return p, k, err
}

// parentOf returns the key s was sealed under, checked against the name
// the token recorded: its SRK, else the transient primary of its
// algorithm (pinned when the token names it).
func (s *Sealed) parentOf(t transport.TPM) (*primary, error) {
	if s.SRK != nil {
		return s.SRK.primary(t)
	}
	p, err := createPrimary(t, s.PrimaryAlg)
	if err != nil {
		return nil, err
	}
	if err := p.pin(s.PrimaryName); err != nil {
		flush(t, p.handle)
		return nil, err
	}
	return p, nil
}

// createPrimary creates the storage primary of algorithm a under the owner
// hierarchy (empty owner auth). With a == 0 it tries ECC, then RSA, as
// systemd does for TPMs without ECC.
func createPrimary(t transport.TPM, a PrimaryAlg) (*primary, error) {
	if a == 0 {
		p, err := createPrimary(t, PrimaryECC)
		if err == nil || errors.Is(err, ErrLockout) {
			return p, err
		}
		return createPrimary(t, PrimaryRSA)
	}
	tmpl, err := PrimaryTemplate(a)
	if err != nil {
		return nil, err
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t)
	if err != nil {
		return nil, classify("create "+PrimaryAlgName(a)+" primary key", err)
	}
	p, err := checkPrimary(a, rsp)
	if err != nil {
		flush(t, rsp.ObjectHandle)
		return nil, err
	}
	return p, nil
}

// checkPrimary decodes the primary's public area and computes its name
// ourselves (nameAlg, then SHA-256 of the marshalled area): sessions are
// salted to this public key, so the name pinned at enrollment vouches for
// it. The name the TPM returned must agree.
func checkPrimary(a PrimaryAlg, rsp *tpm2.CreatePrimaryResponse) (*primary, error) {
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("create %s primary key: decode public area: %w", PrimaryAlgName(a), err)
	}
	if pub.Type != a || pub.NameAlg != tpm2.TPMAlgSHA256 || !pub.ObjectAttributes.Restricted || !pub.ObjectAttributes.Decrypt {
		return nil, fmt.Errorf("create %s primary key: the TPM returned a public area of another kind (type 0x%04x, name algorithm 0x%04x)",
			PrimaryAlgName(a), uint16(pub.Type), uint16(pub.NameAlg))
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("create %s primary key: compute name: %w", PrimaryAlgName(a), err)
	}
	if !bytes.Equal(name.Buffer, rsp.Name.Buffer) {
		return nil, fmt.Errorf("create %s primary key: %w: the TPM returned name %x for a public area whose name is %x",
			PrimaryAlgName(a), ErrPrimaryMismatch, rsp.Name.Buffer, name.Buffer)
	}
	return &primary{alg: a, handle: rsp.ObjectHandle, name: *name, public: *pub}, nil
}

// pin checks the primary against the name recorded at sealing (nil: not
// pinned, as in tokens systemd wrote).
func (p *primary) pin(want []byte) error {
	if want == nil || bytes.Equal(p.name.Buffer, want) {
		return nil
	}
	return fmt.Errorf("%w: its name is %x, the token recorded %x at enrollment "+
		"(another TPM, a cleared owner hierarchy, or something between us and the TPM)", ErrPrimaryMismatch, p.name.Buffer, want)
}

// flush drops a transient object or session; errors are ignored because
// the resource manager (or the next TPM reset) frees it anyway.
func flush(t transport.TPM, h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(t)
}
