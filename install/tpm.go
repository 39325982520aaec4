package install

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"initos/enroll"
	"initos/luks2"
	"initos/tpm2"
)

// tpmPolicy is the policy the volumes' TPM tokens are sealed to: by
// default enroll.DefaultPolicy (PCR 7 as it is now, PCR 15 all-zero, and
// PCR 11 signed by the UKI's .pcrpkey when it has one); Config.TPM.PCRs
// (systemd's --tpm2-pcrs syntax, literal values allowed) replaces the
// PCRs bound by value.
func tpmPolicy(cfg *TPMConfig, a *Artifacts) (enroll.Policy, error) {
	pub, err := pcrPublicKey(cfg, a)
	if err != nil {
		return enroll.Policy{}, err
	}
	p := enroll.DefaultPolicy(pub)
	if cfg.PCRs != "" {
		spec, err := tpm2.ParsePCRSpec(cfg.PCRs)
		if err != nil {
			return enroll.Policy{}, fmt.Errorf("tpm.pcrs: %w", err)
		}
		p.Bank, p.PCRs, p.PCRValues = spec.Bank, spec.PCRs, spec.Values
		if p.PCRs == nil {
			p.PCRs = []int{}
		}
	}
	if cfg.PublicKeyPCRs != "" {
		if p.PublicKeyPCRs, err = tpm2.ParsePCRs(cfg.PublicKeyPCRs); err != nil {
			return enroll.Policy{}, fmt.Errorf("tpm.public_key_pcrs: %w", err)
		}
	}
	return p, nil
}

// pcrPublicKey is the signed PCR policy key: tpm.public_key, else the
// UKI's .pcrpkey, else none.
func pcrPublicKey(cfg *TPMConfig, a *Artifacts) (*rsa.PublicKey, error) {
	pem := a.PCRPublicKey
	if cfg.PublicKey != "" {
		b, err := os.ReadFile(cfg.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("tpm.public_key: %w", err)
		}
		pem = b
	}
	if len(pem) == 0 {
		return nil, nil
	}
	pub, err := tpm2.ParsePublicKeyPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("PCR policy public key: %w", err)
	}
	return pub, nil
}

// pcrSignature reads the running UKI's signed PCR policy; nil when there
// is none (not booted through systemd-stub from a signed UKI).
func pcrSignature(cfg *TPMConfig) ([]byte, error) {
	path := cfg.Signature
	if path == "" {
		path = DefaultPCRSignature
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && cfg.Signature == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tpm.signature: %w", err)
	}
	return b, nil
}

// tpmEnroller enrolls policy p with the configured TPM and, given the
// running UKI's PCR signature sig, binds the volume to this TPM and
// owner key (enroll.Bind) while PCR 15 is still all-zero.
func tpmEnroller(device string, p enroll.Policy, sig []byte) (EnrollFunc, error) {
	dev, err := tpm2.ParseDevice(device)
	if err != nil {
		return nil, fmt.Errorf("tpm.device: %w", err)
	}
	return func(d luks2.Device, h *luks2.Header, vk *luks2.Secret) error {
		tpm, err := tpm2.Open(dev)
		if err != nil {
			return err
		}
		defer tpm.Close()
		if _, err = enroll.Enroll(tpm, d, h, vk, p); err != nil {
			return err
		}
		if sig == nil || p.PublicKey == nil {
			return nil
		}
		if _, err := enroll.Bind(tpm, d, h, vk, p.PublicKey, sig); err != nil {
			return fmt.Errorf("%w (tpm.signature must be the running UKI's, signed by the installed UKI's key)", err)
		}
		return nil
	}, nil
}

// checkTPM opens the TPM once, so that a missing one refuses the install
// before anything is written.
func checkTPM(device string) error {
	dev, err := tpm2.ParseDevice(device)
	if err != nil {
		return fmt.Errorf("tpm.device: %w", err)
	}
	tpm, err := tpm2.Open(dev)
	if err != nil {
		return fmt.Errorf("%w (tpm.disable installs with the recovery key only)", err)
	}
	return tpm.Close()
}

// describePolicy says what the tokens are bound to, for the summary.
func describePolicy(p enroll.Policy) string {
	s := "PCRs " + tpm2.FormatPCRs(p.PCRs)
	for _, n := range p.PCRs {
		if _, ok := p.PCRValues[n]; ok {
			s += fmt.Sprintf(" (%d literal)", n)
		}
	}
	if p.PublicKey != nil {
		s += ", signed PCR policy over " + tpm2.FormatPCRs(p.PublicKeyPCRs)
		if len(p.PublicKeyPCRs) == 0 {
			s += "11"
		}
	}
	return s
}
