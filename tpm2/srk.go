package tpm2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// SRKHandle is the persistent handle of the shared storage root key
// (TCG TPM v2.0 Provisioning Guidance, 7.8), where systemd 254+ keeps it.
const SRKHandle tpm2.TPMHandle = 0x81000001

// iesysKeyResource is IESYSC_KEY_RSRC, the resource type of a key in a
// serialized ESYS_TR.
const iesysKeyResource = 1

// SRK is a persistent storage primary key as systemd 254+ names it in the
// token field "tpm2_srk": tpm2-tss's Esys_TR_Serialize of the key, i.e.
// u32 TPM handle, TPM2B_NAME, u32 resource type (1: key), TPM2B_PUBLIC
// (iesys_MU_IESYS_RESOURCE_Marshal). Unseal checks that the key at Handle
// has this name and salts its session to this public area, so nothing
// between us and the TPM can substitute another key.
type SRK struct {
	Handle tpm2.TPMHandle
	Name   []byte // nameAlg || digest of Public
	Public tpm2.TPMTPublic
}

// ParseSRK decodes a serialized ESYS_TR of a persistent key, checking
// that the name is the name of the public area and nothing trails it.
func ParseSRK(b []byte) (*SRK, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("parse SRK: %d bytes, no handle", len(b))
	}
	k := &SRK{Handle: tpm2.TPMHandle(binary.BigEndian.Uint32(b))}
	if k.Handle>>24 != 0x81 {
		return nil, fmt.Errorf("parse SRK: handle 0x%08x is not a persistent object", uint32(k.Handle))
	}
	name, rest, err := cut2B(b[4:])
	if err != nil {
		return nil, fmt.Errorf("parse SRK: name: %w", err)
	}
	if len(rest) < 4 || binary.BigEndian.Uint32(rest) != iesysKeyResource {
		return nil, errors.New("parse SRK: resource type is not a key (IESYSC_KEY_RSRC)")
	}
	pub, rest, err := cut2B(rest[4:])
	if err != nil {
		return nil, fmt.Errorf("parse SRK: public area: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("parse SRK: %d trailing bytes", len(rest))
	}
	area, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub[2:])
	if err != nil {
		return nil, fmt.Errorf("parse SRK: public area: %w", err)
	}
	k.Name, k.Public = name[2:], *area
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("parse SRK: %w", err)
	}
	return k, nil
}

// check: a restricted decryption key with a SHA-256 name that matches.
func (k *SRK) check() error {
	if !k.Public.ObjectAttributes.Restricted || !k.Public.ObjectAttributes.Decrypt {
		return errors.New("the key is not a restricted decryption (storage) key")
	}
	name, err := tpm2.ObjectName(&k.Public)
	if err != nil {
		return fmt.Errorf("compute name: %w", err)
	}
	if !bytes.Equal(name.Buffer, k.Name) {
		return fmt.Errorf("name %x is not the name %x of the public area", k.Name, name.Buffer)
	}
	return nil
}

// Marshal serializes k as Esys_TR_Serialize does.
func (k *SRK) Marshal() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(k.Handle))
	b = append(b, tpm2.Marshal(tpm2.TPM2BName{Buffer: k.Name})...)
	b = binary.BigEndian.AppendUint32(b, iesysKeyResource)
	return append(b, tpm2.Marshal(tpm2.New2B(k.Public))...)
}

// SRKTemplate is systemd 254+'s SRK template (tpm2_get_srk_template, the
// EK Credential Profile's L-2 with the Provisioning Guidance changes): ECC
// P-256, SHA-256 name, AES-128-CFB, restricted decrypt, fixedTPM,
// fixedParent, sensitiveDataOrigin, userWithAuth, noDA; empty unique.
func SRKTemplate() tpm2.TPMTPublic {
	t, _ := PrimaryTemplate(PrimaryECC)
	t.ObjectAttributes.NoDA = true
	return t
}

// ReadSRK reads the persistent key at handle and returns it as an SRK,
// or nil when there is none.
func ReadSRK(t transport.TPM, handle tpm2.TPMHandle) (*SRK, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: handle}.Execute(withRetry(t))
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(fmt.Sprintf("read SRK 0x%08x", uint32(handle)), err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("read SRK 0x%08x: %w", uint32(handle), err)
	}
	k := &SRK{Handle: handle, Public: *pub}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, fmt.Errorf("read SRK 0x%08x: %w", uint32(handle), err)
	}
	k.Name = name.Buffer
	if !bytes.Equal(k.Name, rsp.Name.Buffer) {
		return nil, fmt.Errorf("read SRK 0x%08x: %w: the TPM returned name %x for a public area whose name is %x",
			uint32(handle), ErrPrimaryMismatch, rsp.Name.Buffer, k.Name)
	}
	return k, k.check()
}

// GetOrCreateSRK returns the SRK at SRKHandle, creating it from
// SRKTemplate and persisting it (owner authorization, empty) first if
// the TPM has none, as systemd 254+ does at enrollment.
func GetOrCreateSRK(t transport.TPM) (*SRK, error) {
	t = withRetry(t)
	if k, err := ReadSRK(t, SRKHandle); k != nil || err != nil {
		return k, err
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		InPublic:      tpm2.New2B(SRKTemplate()),
	}.Execute(t)
	if err != nil {
		return nil, classify("create SRK", err)
	}
	defer flush(t, rsp.ObjectHandle)
	_, err = tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle:     &tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name},
		PersistentHandle: SRKHandle,
	}.Execute(t)
	if err != nil {
		return nil, classify(fmt.Sprintf("persist SRK at 0x%08x", uint32(SRKHandle)), err)
	}
	return ReadSRK(t, SRKHandle)
}

// primary returns the SRK as the parent to load under and salt to, after
// checking that the key at its handle has the recorded name.
func (k *SRK) primary(t transport.TPM) (*primary, error) {
	cur, err := ReadSRK(t, k.Handle)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: no key at the SRK handle 0x%08x (was the TPM cleared?)", ErrPrimaryMismatch, uint32(k.Handle))
	}
	if !bytes.Equal(cur.Name, k.Name) {
		return nil, fmt.Errorf("%w: the key at 0x%08x has name %x, the token recorded %x",
			ErrPrimaryMismatch, uint32(k.Handle), cur.Name, k.Name)
	}
	return &primary{alg: k.Public.Type, handle: k.Handle, name: tpm2.TPM2BName{Buffer: k.Name}, public: k.Public, persistent: true}, nil
}
