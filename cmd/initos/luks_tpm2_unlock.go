package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"initos/enroll"
	"initos/tpm2"
)

func init() {
	describe("luks unlock-tpm2", "[FLAGS] DEVICE [NAME]",
		"Try each systemd-tpm2 token of DEVICE: unseal its secret with the TPM and open its keyslot. Without NAME "+
			"it only checks (silent, exit 0 on success); with NAME it maps the volume with dm-crypt and prints the "+
			"device node. A PIN comes from $PIN; a signed PCR policy needs the .pcrsig JSON (--tpm2-signature, by "+
			"default where systemd-stub puts it). --tpm2-measure-pcr then extends PCR 15 with the volume's identity "+
			"as systemd-cryptsetup's tpm2-measure-pcr=yes does, so no later unseal in this boot can satisfy a policy "+
			"binding PCR 15 to zero. When the TPM refuses, the error names the PCRs that differ with their expected "+
			"and actual values where the token records them. Exit status: 2 wrong PIN, 3 the TPM refuses (PCR "+
			"mismatch, no signature, another primary key), 4 no TPM or no token.")
}

// Default paths where systemd-stub's .pcrsig ends up in the initrd/system.
var defaultSignaturePaths = []string{"/.extra/tpm2-pcr-signature.json", "/run/systemd/tpm2-pcr-signature.json"}

// luksUnlockReport is the --json output of unlock-tpm2.
type luksUnlockReport struct {
	Token    int    `json:"token"`
	Keyslot  int    `json:"keyslot"`
	Device   string `json:"device,omitempty"`
	Measured bool   `json:"measured"`
}

func luksUnlockTPM2(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks unlock-tpm2", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	sigFile := fs.String("tpm2-signature", "", "signed PCR policy JSON `file` (default: "+defaultSignaturePaths[0]+" if present)")
	header := fs.String("header", "", "detached header `file`")
	lockPCRs := fs.String("tpm2-lock-pcrs", "", "after unlocking, extend these PCRs (e.g. 7) so this boot cannot unseal again")
	measure := fs.Bool("tpm2-measure-pcr", false, "after mapping NAME, extend PCR 15 with the volume identity (systemd's tpm2-measure-pcr=yes)")
	asJSON := fs.Bool("json", false, "print the token, keyslot and device as JSON")
	activate := tpm2ActivateFlags(fs)
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	lock, err := tpm2.ParsePCRs(*lockPCRs)
	if err != nil {
		return usageError(fs, "--tpm2-lock-pcrs: %v", err)
	}
	if *measure && len(pos) < 2 {
		return usageError(fs, "--tpm2-measure-pcr needs NAME: the volume identity is its dm name and UUID")
	}
	opts, err := unlockOptions(*sigFile)
	if err != nil {
		return err
	}
	f, h, err := openHeader(orDefault(*header, pos[0]), false)
	if err != nil {
		return err
	}
	defer f.Close()
	tpm, err := open()
	if err != nil {
		return tpmExit(err)
	}
	defer tpm.Close()
	vk, tok, err := enroll.Unlock(tpm, f, h, opts)
	if err != nil {
		return tpmExit(err)
	}
	defer vk.Destroy()
	rep := luksUnlockReport{Token: tok.ID, Keyslot: tok.Keyslot}
	if len(pos) == 2 {
		if rep.Device, err = activate(h, pos[1], pos[0], vk); err != nil {
			return err
		}
		if *measure {
			if err := enroll.MeasureVolume(tpm, h, pos[1], vk); err != nil {
				return err
			}
			rep.Measured = true
		}
	}
	if len(lock) > 0 {
		if err := tpm2.Lock(tpm, tpm2.SHA256, lock); err != nil {
			return err
		}
	}
	return reportUnlock(stdout, *asJSON, rep)
}

func reportUnlock(w io.Writer, asJSON bool, rep luksUnlockReport) error {
	if asJSON {
		return writeJSON(w, rep)
	}
	if rep.Device != "" {
		_, err := fmt.Fprintln(w, rep.Device)
		return err
	}
	return nil
}

// unlockOptions reads $PIN and the signature file (the flag, else the
// first default path present).
func unlockOptions(sigFlag string) (enroll.UnlockOptions, error) {
	var o enroll.UnlockOptions
	if pin := os.Getenv("PIN"); pin != "" {
		o.PIN = []byte(pin)
	}
	path := signaturePath(sigFlag)
	if path == "" {
		return o, nil
	}
	var err error
	o.Signature, err = readBounded("--tpm2-signature", path)
	return o, err
}

func signaturePath(flag string) string {
	if flag != "" {
		return flag
	}
	for _, p := range defaultSignaturePaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
