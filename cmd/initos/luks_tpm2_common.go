package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/google/go-tpm/tpm2/transport"

	"initos/efivar"
	"initos/enroll"
	"initos/luks2"
	"initos/tpm2"
)

// Exit statuses of the TPM verbs (luks enroll-tpm2/unlock-tpm2/reseal-tpm2,
// tpm *), documented in docs/tpm2.md. 2 is also a usage error, as
// everywhere; a wrong passphrase or PIN is 2 like cryptsetup's "no
// permission".
const (
	exitTPMPolicy     = 3 // the TPM refuses in this boot state: PCR mismatch, no signature, another primary key
	exitTPMAbsent     = 4 // no TPM, or no systemd-tpm2 token to use
	exitTPMSecureBoot = 5 // refused to bind PCR 7 while Secure Boot is off or in setup mode
)

// tpmExit gives err the exit status of its class.
func tpmExit(err error) error {
	var code int
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errUsage):
		return err
	case errors.Is(err, tpm2.ErrPolicyMismatch), errors.Is(err, tpm2.ErrNoSignature), errors.Is(err, tpm2.ErrPrimaryMismatch):
		code = exitTPMPolicy
	case errors.Is(err, tpm2.ErrWrongPIN), errors.Is(err, luks2.ErrWrongPassphrase):
		code = 2
	case errors.Is(err, tpm2.ErrNoTPM), errors.Is(err, enroll.ErrNoToken):
		code = exitTPMAbsent
	case errors.Is(err, enroll.ErrSecureBootOff), errors.Is(err, enroll.ErrSetupMode):
		code = exitTPMSecureBoot
	default:
		return err
	}
	return &exitError{code, err}
}

// tpm2DeviceFlag adds --tpm2-device and returns a function opening it.
func tpm2DeviceFlag(fs *flag.FlagSet) func() (transport.TPMCloser, error) {
	s := fs.String("tpm2-device", "auto", "TPM: auto, a device PATH, swtpm:path=SOCK or swtpm:host=H,port=P")
	return func() (transport.TPMCloser, error) {
		d, err := tpm2.ParseDevice(*s)
		if err != nil {
			return nil, fmt.Errorf("%w: --tpm2-device: %v", errUsage, err)
		}
		return tpm2.Open(d)
	}
}

// maxKeyFile bounds key files and other secrets read from files or stdin:
// cryptsetup's default --keyfile-size limit (8 MiB).
const maxKeyFile = 8 << 20

// readBounded reads a file, or stdin for "-", refusing more than
// maxKeyFile bytes; what names it in errors (e.g. "--unlock-key-file").
func readBounded(what, path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxKeyFile {
		clear(b)
		return nil, fmt.Errorf("read %s: more than %d bytes (cryptsetup's key file limit, 8 MiB)", what, maxKeyFile)
	}
	return b, nil
}

// pinFromEnv returns the PIN in the first non-empty environment variable
// of envs (systemd's convention for non-interactive use: $PIN to unseal,
// $NEWPIN to enroll); no envs means no PIN is wanted.
func pinFromEnv(envs []string) ([]byte, error) {
	if len(envs) == 0 {
		return nil, nil
	}
	for _, env := range envs {
		if pin := os.Getenv(env); pin != "" {
			return []byte(pin), nil
		}
	}
	return nil, fmt.Errorf("%w: a PIN is required: set $%s", errUsage, envs[0])
}

// pinEnv returns envs if want is set, else nil (no PIN).
func pinEnv(want bool, envs ...string) []string {
	if !want {
		return nil
	}
	return envs
}

// secureBootFlags are --force and --efivarfs of the verbs that seal to
// PCR 7: sealing to PCR 7 while Secure Boot is off (or in setup mode)
// gives a policy any boot chain satisfies, so it is refused unless forced.
type secureBootFlags struct {
	force    bool
	efivarfs string
}

func (s *secureBootFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&s.force, "force", false, "bind PCR 7 even while Secure Boot is off or the firmware is in setup mode")
	fs.StringVar(&s.efivarfs, "efivarfs", efivar.DefaultEfivarfs, "where to read SecureBoot and SetupMode (efivarfs `dir`)")
}

// check refuses a policy binding PCR 7 unless Secure Boot is enforced or
// --force is given (then it warns on stderr).
func (s *secureBootFlags) check(p enroll.Policy, stderr io.Writer) error {
	if !p.BindsPCR7() {
		return nil
	}
	err := enroll.CheckSecureBoot(&efivar.Dir{Path: s.efivarfs})
	if err == nil {
		return nil
	}
	if s.force {
		fmt.Fprintf(stderr, "warning: %v; binding PCR 7 anyway (--force)\n", err)
		return nil
	}
	return fmt.Errorf("%w (--force binds PCR 7 anyway; --tpm2-pcrs without 7 binds other PCRs)", err)
}

// policyFlags are the sealing flags shared by "tpm seal", "luks
// enroll-tpm2" and "luks reseal-tpm2", systemd-cryptenroll's names with
// the given prefix ("tpm2-" for luks, "" for tpm seal).
type policyFlags struct {
	pcrs, bank, pubKey, pubPCRs string
	withPIN                     bool
}

func (p *policyFlags) register(fs *flag.FlagSet, prefix, pinFlag, pinHelp string) {
	fs.StringVar(&p.pcrs, prefix+"pcrs", "7", "PCRs bound by value, e.g. 7+15:sha256=0000… (literal value) (empty: none)")
	bankFlag := prefix + "pcr-bank" // --tpm2-pcr-bank as systemd-cryptenroll; "tpm seal" says --bank
	if prefix == "" {
		bankFlag = "bank"
	}
	fs.StringVar(&p.bank, bankFlag, "sha256", "PCR `bank`")
	fs.StringVar(&p.pubKey, prefix+"public-key", "", "PEM RSA public key `file`: add a signed PCR policy")
	fs.StringVar(&p.pubPCRs, prefix+"public-key-pcrs", "11", "PCRs covered by the signed policy")
	fs.BoolVar(&p.withPIN, pinFlag, false, pinHelp)
}

// policy converts the flags; the PIN, if any, comes from pinVars.
func (p *policyFlags) policy(pinVars ...string) (enroll.Policy, error) {
	var o enroll.Policy
	spec, err := tpm2.ParsePCRSpec(p.pcrs)
	if err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	o.PCRs, o.PCRValues = spec.PCRs, spec.Values
	if o.Bank, err = tpm2.ParseBank(p.bank); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if spec.Values != nil && spec.Bank != o.Bank {
		return o, fmt.Errorf("%w: literal PCR values are for bank %s, the policy uses %s", errUsage, tpm2.BankName(spec.Bank), tpm2.BankName(o.Bank))
	}
	if o.PIN, err = pinFromEnv(pinEnv(p.withPIN, pinVars...)); err != nil {
		return o, err
	}
	if p.pubKey == "" {
		return o, nil
	}
	b, err := readBounded("public key", p.pubKey)
	if err != nil {
		return o, err
	}
	if o.PublicKey, err = tpm2.ParsePublicKeyPEM(b); err != nil {
		return o, fmt.Errorf("%s: %w", p.pubKey, err)
	}
	if o.PublicKeyPCRs, err = tpm2.ParsePCRs(p.pubPCRs); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

// flagGiven reports whether any of the named flags was set on the command
// line.
func flagGiven(fs *flag.FlagSet, names ...string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(names, f.Name) {
			given = true
		}
	})
	return given
}
