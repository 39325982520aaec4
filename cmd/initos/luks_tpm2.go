package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"initos/luks2"
	"initos/tpm2"
)

func init() {
	luksSubs["enroll-tpm2"] = subcommand{"add a TPM2-sealed keyslot + systemd-tpm2 token: [--unlock-key-file F] DEVICE", luksEnrollTPM2}
	luksSubs["unlock-tpm2"] = subcommand{"unlock with a systemd-tpm2 token: DEVICE [NAME]", luksUnlockTPM2}
}

// tpm2KeyslotPBKDF is what systemd-cryptenroll uses for keyslots holding
// a high-entropy TPM2 secret: PBKDF2, minimal iterations (the key needs no
// stretching).
var tpm2KeyslotPBKDF = luks2.PBKDF{Type: "pbkdf2", Hash: "sha512", Iterations: 1000}

// Default paths where systemd-stub's .pcrsig ends up in the initrd/system.
var defaultSignaturePaths = []string{"/.extra/tpm2-pcr-signature.json", "/run/systemd/tpm2-pcr-signature.json"}

func luksEnrollTPM2(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks enroll-tpm2", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	pcrs := fs.String("tpm2-pcrs", "7", "PCRs bound by value, e.g. 7+11 (empty: none)")
	bank := fs.String("tpm2-pcr-bank", "sha256", "PCR bank")
	pubKey := fs.String("tpm2-public-key", "", "PEM RSA public key: add a signed PCR policy")
	pubPCRs := fs.String("tpm2-public-key-pcrs", "11", "PCRs covered by the signed policy")
	withPIN := fs.Bool("tpm2-with-pin", false, "also require a PIN (read from $NEWPIN as systemd-cryptenroll, else $PIN)")
	keyFile := fs.String("unlock-key-file", "", "existing passphrase `file` (default: $PASSWORD)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	opts, err := sealOptions(*pcrs, *bank, *pubKey, *pubPCRs, pinEnv(*withPIN, "NEWPIN", "PIN"))
	if err != nil {
		return err
	}
	pass, err := enrollPassphrase(*keyFile)
	if err != nil {
		return err
	}
	slot, err := enrollTPM2(open, pos[0], pass, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "New TPM2 token enrolled as key slot %d.\n", slot)
	return nil
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
	return readKeyFile("unlock-key-file", keyFile)
}

// enrollTPM2: 1. unlock the volume key with pass; 2. seal a random secret;
// 3. add a keyslot whose passphrase is base64(secret), as systemd does;
// 4. add the token (on failure, remove the keyslot again).
func enrollTPM2(open func() (tpm2Conn, error), device string, pass []byte, opts tpm2.SealOptions) (int, error) {
	f, h, err := openHeader(device, true)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	vk, _, err := h.Unlock(f, pass)
	if err != nil {
		return -1, wrongKey(err)
	}
	defer vk.Destroy()
	tpm, err := open()
	if err != nil {
		return -1, err
	}
	secret, sealed, err := tpm2.Seal(tpm, opts)
	tpm.Close()
	if err != nil {
		return -1, err
	}
	slot, err := h.AddKey(f, vk.Bytes(), []byte(base64.StdEncoding.EncodeToString(secret)),
		luks2.KeyslotOptions{PBKDF: tpm2KeyslotPBKDF})
	clear(secret)
	if err != nil {
		return -1, err
	}
	tok, err := tpm2.NewToken(sealed, slot).Marshal()
	if err == nil {
		_, err = h.AddToken(f, -1, tok)
	}
	if err != nil {
		return -1, errors.Join(fmt.Errorf("enroll TPM2: add token: %w", err), h.KillSlot(f, slot))
	}
	return slot, nil
}

func luksUnlockTPM2(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks unlock-tpm2", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	sigFile := fs.String("tpm2-signature", "", "signed PCR policy JSON (default: "+defaultSignaturePaths[0]+" if present)")
	header := fs.String("header", "", "detached header `file`")
	lockPCRs := fs.String("tpm2-lock-pcrs", "", "after unlocking, extend these PCRs (e.g. 7) so this boot cannot unseal again")
	activate := tpm2ActivateFlags(fs)
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	lock, err := tpm2.ParsePCRs(*lockPCRs)
	if err != nil {
		return fmt.Errorf("%w: --tpm2-lock-pcrs: %v", errUsage, err)
	}
	f, h, err := openHeader(orDefault(*header, pos[0]), false)
	if err != nil {
		return err
	}
	defer f.Close()
	vk, err := unlockTPM2(open, f, h, signaturePath(*sigFile), lock)
	if err != nil {
		return err
	}
	defer vk.Destroy()
	if len(pos) == 1 {
		return nil
	}
	node, err := activate(h, pos[1], pos[0], vk)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, node)
	return nil
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

// unlockTPM2 tries each systemd-tpm2 token in order and returns the volume
// key of the first that unseals and opens its keyslot; then it extends the
// lock PCRs.
func unlockTPM2(open func() (tpm2Conn, error), f *os.File, h *luks2.Header, sigFile string, lock []int) (*luks2.Secret, error) {
	ids, toks := h.Tokens()
	var errs []error
	for i, id := range ids {
		if toks[i] == nil || toks[i].Type != tpm2.TokenType {
			continue
		}
		vk, err := unlockToken(open, f, h, h.Meta.Tokens[id], sigFile)
		if err == nil {
			return vk, lockTPM2(open, lock)
		}
		errs = append(errs, fmt.Errorf("token %s: %w", id, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("unlock with TPM2: no %s token in the header", tpm2.TokenType)
	}
	return nil, fmt.Errorf("unlock with TPM2: %w", errors.Join(errs...))
}

func unlockToken(open func() (tpm2Conn, error), f *os.File, h *luks2.Header, raw []byte, sigFile string) (*luks2.Secret, error) {
	tok, err := tpm2.ParseToken(raw)
	if err != nil {
		return nil, err
	}
	slot, err := tok.Keyslot()
	if err != nil {
		return nil, err
	}
	secret, err := unsealToken(open, tok, sigFile)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	pass := []byte(base64.StdEncoding.EncodeToString(secret))
	defer clear(pass)
	return h.UnlockSlot(f, strconv.Itoa(slot), pass)
}

func lockTPM2(open func() (tpm2Conn, error), pcrs []int) error {
	if len(pcrs) == 0 {
		return nil
	}
	tpm, err := open()
	if err != nil {
		return err
	}
	defer tpm.Close()
	return tpm2.Lock(tpm, tpm2.SHA256, pcrs)
}
