package tpm2

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// SecretSize is the size of the random secret Seal generates, as systemd.
const SecretSize = 32

// SealOptions configures Seal. The zero value seals a random 32-byte
// secret to PCR 7 of the SHA-256 bank, without PIN or signed policy.
type SealOptions struct {
	// PCRs are bound by value (their current values). nil means {7};
	// an empty non-nil slice binds no PCR by value.
	PCRs []int
	// PCRValues gives literal values for some of PCRs, used instead of
	// their current values (systemd's "15:sha256=0000…": PCR 15 still
	// all-zero, i.e. no volume opened yet in this boot).
	PCRValues map[int][]byte
	// Bank is the PCR bank; zero means SHA256.
	Bank Bank
	// PublicKey, if set, adds a signed PCR policy (PolicyAuthorize): the
	// key unseals whenever PublicKeyPCRs have values the owner of the
	// matching private key signed. RSA only, as systemd 252.
	PublicKey *rsa.PublicKey
	// PublicKeyPCRs are the PCRs covered by signatures; nil means {11}.
	PublicKeyPCRs []int
	// PIN, if non-nil, is required to unseal (PolicyAuthValue).
	PIN []byte
	// Secret is the data to seal; nil means SecretSize random bytes.
	Secret []byte
	// PrimaryAlg selects the primary key; zero means ECC, falling back to
	// RSA if the TPM lacks ECC.
	PrimaryAlg PrimaryAlg
	// SRK seals under the persistent storage root key at SRKHandle
	// (created and persisted if missing), as systemd 254+ does, instead of
	// systemd 252's transient primary; the token then carries "tpm2_srk".
	// systemd 252 cannot unseal such a token.
	SRK bool
}

// Sealed is a sealed secret: the TPM-encrypted object plus what is needed
// to rebuild its policy. It maps one to one onto a systemd-tpm2 token.
type Sealed struct {
	Private       []byte // TPM2B_PRIVATE, marshalled
	Public        []byte // TPM2B_PUBLIC, marshalled
	PrimaryAlg    PrimaryAlg
	Bank          Bank
	PCRs          []int          // bound by value
	PCRValues     map[int][]byte // the values the policy binds PCRs to (nil if unknown)
	Literal       []int          // the PCRs of PCRValues given literally at sealing
	PrimaryName   []byte         // TPM name of the transient primary key (nil: not pinned)
	SRK           *SRK           // the persistent SRK sealed under (systemd 254+), or nil
	PublicKey     []byte         // PEM of the policy signing key, or nil
	PublicKeyPCRs []int          // covered by signatures
	PIN           bool
	PolicyHash    []byte // the object's authPolicy
}

// Seal seals a secret (random unless opts.Secret is set) to the TPM's
// current state and returns the secret and the sealed object.
//
// Steps: 1. create the primary key; 2. read the bound PCRs and compute the
// policy digest; 3. TPM2_Create a keyed-hash object holding the secret,
// with that authPolicy, in an HMAC session salted with the primary key and
// encrypting the sensitive input (Part 1, 21); 4. flush.
func Seal(t transport.TPM, opts SealOptions) (secret []byte, s *Sealed, err error) {
	t = withRetry(t)
	s, spec, err := sealSpec(t, opts)
	if err != nil {
		return nil, nil, err
	}
	secret = opts.Secret
	if secret == nil {
		secret = make([]byte, SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, nil, fmt.Errorf("seal: generate secret: %w", err)
		}
	}
	if len(secret) == 0 || len(secret) > 128 {
		return nil, nil, fmt.Errorf("seal: secret is %d bytes, want 1..128", len(secret))
	}
	p, srk, err := parentFor(t, opts.PrimaryAlg, opts.SRK)
	if err != nil {
		return nil, nil, fmt.Errorf("seal: %w", err)
	}
	defer p.close(t)
	if s.SRK = srk; srk == nil {
		s.PrimaryAlg, s.PrimaryName = p.alg, p.name.Buffer
	}
	if s.PolicyHash, err = spec.digest(); err != nil {
		return nil, nil, fmt.Errorf("seal: %w", err)
	}
	if err := create(t, p, s, secret, opts.PIN); err != nil {
		return nil, nil, fmt.Errorf("seal: %w", err)
	}
	return secret, s, nil
}

// sealSpec validates opts, reads the bound PCRs and returns the policy.
func sealSpec(t transport.TPM, opts SealOptions) (*Sealed, policySpec, error) {
	s := &Sealed{Bank: opts.Bank, PCRs: opts.PCRs, PIN: opts.PIN != nil}
	if s.Bank == 0 {
		s.Bank = SHA256
	}
	if s.PCRs == nil {
		s.PCRs = []int{7}
	}
	if err := checkPCRs(s.PCRs); err != nil {
		return nil, policySpec{}, fmt.Errorf("seal: %w", err)
	}
	if _, err := bankHash(s.Bank); err != nil {
		return nil, policySpec{}, fmt.Errorf("seal: %w", err)
	}
	spec := policySpec{bank: s.Bank, pcrs: s.PCRs, pin: s.PIN}
	if opts.PublicKey != nil {
		if err := signedSpec(s, &spec, opts); err != nil {
			return nil, policySpec{}, fmt.Errorf("seal: %w", err)
		}
	}
	v, err := boundValues(t, s.Bank, s.PCRs, opts.PCRValues)
	if err != nil {
		return nil, policySpec{}, fmt.Errorf("seal: %w", err)
	}
	spec.values, s.PCRValues = v, v
	s.Literal = slices.Sorted(maps.Keys(opts.PCRValues))
	return s, spec, nil
}

// boundValues returns the values pcrs are bound to: literal[p] where
// given, else the TPM's current value.
func boundValues(t transport.TPM, bank Bank, pcrs []int, literal map[int][]byte) (map[int][]byte, error) {
	var read []int
	for _, p := range pcrs {
		if _, ok := literal[p]; !ok {
			read = append(read, p)
		}
	}
	for p := range literal {
		if !slices.Contains(pcrs, p) {
			return nil, fmt.Errorf("PCR %d has a literal value but is not in the bound PCRs %s", p, FormatPCRs(pcrs))
		}
	}
	v := map[int][]byte{}
	if len(read) > 0 {
		var err error
		if v, err = ReadPCRs(t, bank, read); err != nil {
			return nil, err
		}
	}
	for p, val := range literal {
		v[p] = slices.Clone(val)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

func signedSpec(s *Sealed, spec *policySpec, opts SealOptions) error {
	s.PublicKeyPCRs = opts.PublicKeyPCRs
	if s.PublicKeyPCRs == nil {
		s.PublicKeyPCRs = []int{11}
	}
	if len(s.PublicKeyPCRs) == 0 {
		return fmt.Errorf("signed policy: PublicKeyPCRs is empty")
	}
	if err := checkPCRs(s.PublicKeyPCRs); err != nil {
		return fmt.Errorf("signed policy: %w", err)
	}
	name, err := PublicKeyName(opts.PublicKey)
	if err != nil {
		return err
	}
	if s.PublicKey, err = EncodePublicKeyPEM(opts.PublicKey); err != nil {
		return err
	}
	spec.pubKeyName = name
	return nil
}

// sealedTemplate is systemd 252's sealed-data object: a keyed-hash object
// (never used for HMAC) with fixedTPM and fixedParent, no userWithAuth: only
// the policy authorizes it.
func sealedTemplate(policy []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgKeyedHash,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true},
		AuthPolicy:       tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{}),
	}
}

func create(t transport.TPM, p *primary, s *Sealed, secret, pin []byte) error {
	var auth []byte
	if pin != nil {
		auth = hashPIN(pin)
	}
	sess := tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(p.handle, p.public), tpm2.AESEncryption(128, tpm2.EncryptIn))
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: sess},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(sealedTemplate(s.PolicyHash)),
	}.Execute(t)
	if err != nil {
		return classify("create sealed object", err)
	}
	s.Private = tpm2.Marshal(rsp.OutPrivate)
	s.Public = tpm2.Marshal(rsp.OutPublic)
	return nil
}

// Blob returns the sealed object as systemd stores it in "tpm2-blob":
// TPM2B_PRIVATE then TPM2B_PUBLIC.
func (s *Sealed) Blob() []byte {
	return append(append([]byte(nil), s.Private...), s.Public...)
}

// SetBlob splits a "tpm2-blob" into s.Private and s.Public, checking the
// sizes, that nothing trails them, and that the public area is a
// keyed-hash (sealed data) object.
func (s *Sealed) SetBlob(blob []byte) error {
	priv, rest, err := cut2B(blob)
	if err != nil {
		return fmt.Errorf("parse TPM2 blob: private part: %w", err)
	}
	pub, rest, err := cut2B(rest)
	if err != nil {
		return fmt.Errorf("parse TPM2 blob: public part: %w", err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("parse TPM2 blob: %d trailing bytes after the public part", len(rest))
	}
	area, err := tpm2.Unmarshal[tpm2.TPMTPublic](pub[2:])
	if err != nil {
		return fmt.Errorf("parse TPM2 blob: public area: %w", err)
	}
	if area.Type != tpm2.TPMAlgKeyedHash {
		return fmt.Errorf("parse TPM2 blob: object type 0x%04x is not a keyed-hash (sealed data) object", uint16(area.Type))
	}
	s.Private, s.Public = priv, pub
	return nil
}

// cut2B splits a TPM2B (u16 size, then size bytes) off b and returns it
// with its size field.
func cut2B(b []byte) (tpm2b, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("truncated size field (%d bytes)", len(b))
	}
	n := 2 + int(binary.BigEndian.Uint16(b))
	if n == 2 {
		return nil, nil, fmt.Errorf("empty")
	}
	if n > len(b) {
		return nil, nil, fmt.Errorf("size %d exceeds the %d bytes left", n-2, len(b)-2)
	}
	return b[:n:n], b[n:], nil
}
