package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"initos/enroll"
	"initos/luks2"
)

func init() {
	luksSubs["enroll-tpm2"] = subcommand{"add a TPM2-sealed keyslot + systemd-tpm2 token: [--unlock-key-file F] DEVICE", luksEnrollTPM2}
	luksSubs["unlock-tpm2"] = subcommand{"unlock with a systemd-tpm2 token: DEVICE [NAME]", luksUnlockTPM2}
	luksSubs["reseal-tpm2"] = subcommand{"re-enroll the TPM2 token against the current PCRs: --unlock-key-file F DEVICE", luksResealTPM2}
	describe("luks enroll-tpm2", "[FLAGS] DEVICE",
		"Unlock DEVICE's volume key with an existing passphrase or recovery key (--unlock-key-file, else $PASSWORD), "+
			"seal a new random secret to the TPM, and add a keyslot for it with a systemd-tpm2 token, as systemd-cryptenroll "+
			"--tpm2-device does. --tpm2-pcrs binds PCRs by their current value or, written 15:sha256=HEX, by a literal "+
			"value; --tpm2-public-key adds a signed PCR 11 policy. Binding PCR 7 is refused while Secure Boot is off "+
			"or the firmware is in setup mode, unless --force. Exit status: 2 wrong passphrase, 3 the TPM refuses, "+
			"4 no TPM, 5 Secure Boot off.")
	describe("luks reseal-tpm2", "[FLAGS] DEVICE",
		"Re-enroll DEVICE's TPM2 token against the TPM's current PCR values after a firmware or Secure Boot key "+
			"update changed PCR 7: unlock with a passphrase or recovery key, enroll a new token with the policy of the "+
			"old one (or the one --tpm2-pcrs and --tpm2-public-key give), then remove the old token and its keyslot.")
}

// luksTPM2Report is the --json output of enroll-tpm2 and reseal-tpm2.
type luksTPM2Report struct {
	Keyslot int `json:"keyslot"`
	Token   int `json:"token"`
}

func luksEnrollTPM2(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks enroll-tpm2", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	var pf policyFlags
	pf.register(fs, "tpm2-", "tpm2-with-pin", "also require a PIN (read from $NEWPIN as systemd-cryptenroll, else $PIN)")
	var sb secureBootFlags
	sb.register(fs)
	keyFile := fs.String("unlock-key-file", "", "existing passphrase `file`, - for stdin (default: $PASSWORD)")
	asJSON := fs.Bool("json", false, "print the keyslot and token as JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	p, err := pf.policy("NEWPIN", "PIN")
	if err != nil {
		return err
	}
	pass, err := enrollPassphrase(*keyFile)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := sb.check(p, stderr); err != nil {
		return tpmExit(err)
	}
	e, err := withVolumeKey(pos[0], pass, func(f *os.File, h *luks2.Header, vk *luks2.Secret) (enroll.Enrollment, error) {
		tpm, err := open()
		if err != nil {
			return enroll.Enrollment{}, err
		}
		defer tpm.Close()
		return enroll.Enroll(tpm, f, h, vk, p)
	})
	if err != nil {
		return tpmExit(err)
	}
	return reportEnrollment(stdout, *asJSON, e, "New TPM2 token enrolled as key slot %d.\n")
}

func luksResealTPM2(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks reseal-tpm2", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	var pf policyFlags
	pf.register(fs, "tpm2-", "tpm2-with-pin", "also require a PIN (read from $NEWPIN, else $PIN)")
	var sb secureBootFlags
	sb.register(fs)
	keyFile := fs.String("unlock-key-file", "", "passphrase or recovery key `file`, - for stdin (default: $PASSWORD)")
	asJSON := fs.Bool("json", false, "print the new keyslot and token as JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var o enroll.ResealOptions
	if flagGiven(fs, "tpm2-pcrs", "tpm2-public-key", "tpm2-with-pin") {
		p, err := pf.policy("NEWPIN", "PIN")
		if err != nil {
			return err
		}
		o.Policy = &p
	} else if pin := os.Getenv("PIN"); pin != "" {
		o.PIN = []byte(pin) // for a token that requires one
	}
	pass, err := enrollPassphrase(*keyFile)
	if err != nil {
		return err
	}
	defer clear(pass)
	e, err := withVolumeKey(pos[0], pass, func(f *os.File, h *luks2.Header, vk *luks2.Secret) (enroll.Enrollment, error) {
		if err := sb.check(resealPreview(h, o), stderr); err != nil {
			return enroll.Enrollment{}, err
		}
		tpm, err := open()
		if err != nil {
			return enroll.Enrollment{}, err
		}
		defer tpm.Close()
		return enroll.Reseal(tpm, f, h, vk, o)
	})
	if err != nil {
		return tpmExit(err)
	}
	return reportEnrollment(stdout, *asJSON, e, "TPM2 token resealed as key slot %d.\n")
}

// resealPreview is the policy Reseal will use, for the Secure Boot check:
// the given one, else PCR 7 is assumed bound (the default, and what a
// token carried over most likely binds).
func resealPreview(h *luks2.Header, o enroll.ResealOptions) enroll.Policy {
	if o.Policy != nil {
		return *o.Policy
	}
	if toks, _ := enroll.Tokens(h); len(toks) > 0 {
		return enroll.Policy{PCRs: toks[0].Sealed.PCRs}
	}
	return enroll.Policy{}
}

// withVolumeKey opens DEVICE for writing, unlocks its volume key with
// pass and runs fn.
func withVolumeKey(device string, pass []byte, fn func(*os.File, *luks2.Header, *luks2.Secret) (enroll.Enrollment, error)) (enroll.Enrollment, error) {
	f, h, err := openHeader(device, true)
	if err != nil {
		return enroll.Enrollment{}, err
	}
	defer f.Close()
	vk, _, err := h.Unlock(f, pass)
	if err != nil {
		return enroll.Enrollment{}, err
	}
	defer vk.Destroy()
	return fn(f, h, vk)
}

// enrollPassphrase returns the existing passphrase: the --unlock-key-file,
// else $PASSWORD (as systemd-cryptenroll reads it).
func enrollPassphrase(keyFile string) ([]byte, error) {
	if keyFile == "" {
		if pw := os.Getenv("PASSWORD"); pw != "" {
			return []byte(pw), nil
		}
		return nil, fmt.Errorf("%w: --unlock-key-file or $PASSWORD is required", errUsage)
	}
	return readBounded("--unlock-key-file", keyFile)
}

func reportEnrollment(w io.Writer, asJSON bool, e enroll.Enrollment, text string) error {
	if asJSON {
		return writeJSON(w, luksTPM2Report{Keyslot: e.Keyslot, Token: e.Token})
	}
	_, err := fmt.Fprintf(w, text, e.Keyslot)
	return err
}
