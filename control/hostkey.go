package control

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/crypto/ssh"
)

// hostKeyLabel seeds the unique field of the host key template, so the key
// differs from every other primary key made from a similar template.
const hostKeyLabel = "InitOS control plane SSH host key v1"

// HostKeyTemplate returns the fixed template of the SSH host key: an ECC
// NIST P-256 ECDSA/SHA-256 signing key (not restricted, no decryption),
// fixedTPM and fixedParent so it never leaves the TPM, userWithAuth with an
// empty auth value and noDA so a dictionary-attack lockout (wrong PINs)
// never takes the control plane down, and a unique field of
// SHA-256(hostKeyLabel). TPM2_CreatePrimary derives the key from the
// owner hierarchy's seed and this template (TPM 2.0 Part 1, 27.6): the
// same TPM always gives the same key, until its owner hierarchy is cleared.
func HostKeyTemplate() tpm2.TPMTPublic {
	label := sha256.Sum256([]byte(hostKeyLabel))
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
			UserWithAuth: true, NoDA: true, SignEncrypt: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: label[:]},
		}),
	}
}

// TPMKey is the host key loaded in the TPM. It is a crypto.Signer for
// ssh.NewSignerFromSigner. Its private part never leaves the TPM.
type TPMKey struct {
	mu     sync.Mutex // one TPM command at a time
	tpm    transport.TPM
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	pub    *ecdsa.PublicKey
}

// TPMHostKey derives the host key in tpm under the owner hierarchy (empty
// owner auth, as the installer leaves it). The caller closes the key to
// flush it from the TPM.
func TPMHostKey(tpm transport.TPM) (*TPMKey, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(HostKeyTemplate()),
	}.Execute(tpm)
	if err != nil {
		return nil, fmt.Errorf("control: derive host key in the TPM: %w", err)
	}
	k := &TPMKey{tpm: tpm, handle: rsp.ObjectHandle, name: rsp.Name}
	if k.pub, err = eccPublic(rsp.OutPublic); err != nil {
		k.Close()
		return nil, fmt.Errorf("control: derive host key in the TPM: %w", err)
	}
	return k, nil
}

func eccPublic(out tpm2.TPM2BPublic) (*ecdsa.PublicKey, error) {
	pub, err := out.Contents()
	if err != nil {
		return nil, fmt.Errorf("decode public area: %w", err)
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("public area: %w", err)
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("public area: %w", err)
	}
	k, err := tpm2.ECDSAPub(parms, point)
	if err != nil {
		return nil, err
	}
	if !k.Curve.IsOnCurve(k.X, k.Y) {
		return nil, fmt.Errorf("public key is not on %s", k.Curve.Params().Name)
	}
	return k, nil
}

// Public returns the *ecdsa.PublicKey.
func (k *TPMKey) Public() crypto.PublicKey { return k.pub }

// SSHPublicKey returns the public key in SSH form (ecdsa-sha2-nistp256).
func (k *TPMKey) SSHPublicKey() (ssh.PublicKey, error) { return ssh.NewPublicKey(k.pub) }

// Sign signs a SHA-256 digest in the TPM and returns an ASN.1 DER ECDSA
// signature, as crypto.Signer requires. rand is unused: the TPM draws the
// nonce.
func (k *TPMKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != sha256.Size {
		return nil, fmt.Errorf("control: TPM host key: sign: want a SHA-256 digest, got %v (%d bytes)", opts.HashFunc(), len(digest))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	rsp, err := tpm2.Sign{
		KeyHandle: tpm2.AuthHandle{Handle: k.handle, Name: k.name, Auth: tpm2.PasswordAuth(nil)},
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(k.tpm)
	if err != nil {
		return nil, fmt.Errorf("control: TPM host key: sign: %w", err)
	}
	sig, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("control: TPM host key: sign: %w", err)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig.SignatureR.Buffer), new(big.Int).SetBytes(sig.SignatureS.Buffer),
	})
}

// Close flushes the key from the TPM (it can be derived again).
func (k *TPMKey) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.handle == 0 {
		return nil
	}
	_, err := tpm2.FlushContext{FlushHandle: k.handle}.Execute(k.tpm)
	k.handle = 0
	return err
}

// HostKeySigner derives the host key in tpm and returns it as an
// ssh.Signer for Config.HostKey, with the key to close when done.
func HostKeySigner(tpm transport.TPM) (ssh.Signer, *TPMKey, error) {
	k, err := TPMHostKey(tpm)
	if err != nil {
		return nil, nil, err
	}
	s, err := ssh.NewSignerFromSigner(k)
	if err != nil {
		k.Close()
		return nil, nil, fmt.Errorf("control: host key: %w", err)
	}
	return s, k, nil
}

// HostPublicKey derives the host key in tpm and returns its public half,
// flushing the key again: the installer prints its fingerprint
// (ssh.FingerprintSHA256) and records it in the owner's known_hosts
// (client.AddKnownHost), so the host is pinned before its first boot.
func HostPublicKey(tpm transport.TPM) (ssh.PublicKey, error) {
	k, err := TPMHostKey(tpm)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	pub, err := k.SSHPublicKey()
	if err != nil {
		return nil, fmt.Errorf("control: host key: %w", err)
	}
	return pub, nil
}
