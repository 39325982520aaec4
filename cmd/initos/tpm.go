package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"os"

	"initos/internal/atomicfile"
	"initos/tpm2"
)

func init() { register("tpm", "TPM2 PCRs, sealing, PCR 11 prediction", runTPM) }

func runTPM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "tpm", map[string]subcommand{
		"pcrs":          {"print the PCRs of a bank", tpmPCRs},
		"seal":          {"seal a secret to PCRs: [flags] IN OUT (OUT: systemd-tpm2 token JSON)", tpmSeal},
		"unseal":        {"unseal a sealed token JSON to stdout: [flags] FILE", tpmUnseal},
		"predict-pcr11": {"print the PCR 11 value systemd-stub produces for a UKI: UKI", tpmPredict},
		"sign-pcr11":    {"sign a UKI's PCR 11 value (.pcrsig JSON out)", tpmSignPCR11},
	}, args, stdout, stderr)
}

// tpm2DeviceFlag adds --tpm2-device and returns a function opening it.
func tpm2DeviceFlag(fs *flag.FlagSet) func() (tpm2Conn, error) {
	s := fs.String("tpm2-device", "auto", "TPM: auto, a device PATH, swtpm:path=SOCK or swtpm:host=H,port=P")
	return func() (tpm2Conn, error) {
		d, err := tpm2.ParseDevice(*s)
		if err != nil {
			return nil, fmt.Errorf("%w: --tpm2-device: %v", errUsage, err)
		}
		return tpm2.Open(d)
	}
}

type tpm2Conn = interface {
	Send([]byte) ([]byte, error)
	Close() error
}

func tpmPCRs(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm pcrs", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	bankName := fs.String("bank", "sha256", "PCR bank: sha256 or sha1")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	bank, err := tpm2.ParseBank(*bankName)
	if err != nil {
		return fmt.Errorf("%w: --bank: %v", errUsage, err)
	}
	tpm, err := open()
	if err != nil {
		return err
	}
	defer tpm.Close()
	all := make([]int, tpm2.NumPCRs)
	for i := range all {
		all[i] = i
	}
	v, err := tpm2.ReadPCRs(tpm, bank, all)
	if err != nil {
		return err
	}
	for _, i := range all {
		fmt.Fprintf(stdout, "%s:%d=%x\n", tpm2.BankName(bank), i, v[i])
	}
	return nil
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

func tpmSeal(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm seal", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	pcrs := fs.String("pcrs", "7", "PCRs bound by value, e.g. 7+11 (empty: none)")
	bankName := fs.String("bank", "sha256", "PCR bank")
	pubKey := fs.String("public-key", "", "PEM RSA public key for a signed PCR policy")
	pubPCRs := fs.String("public-key-pcrs", "11", "PCRs covered by the signed policy")
	withPIN := fs.Bool("pin", false, "also require a PIN (read from $PIN)")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	opts, err := sealOptions(*pcrs, *bankName, *pubKey, *pubPCRs, pinEnv(*withPIN, "PIN"))
	if err != nil {
		return err
	}
	if opts.Secret, err = readInput(pos[0]); err != nil {
		return err
	}
	tpm, err := open()
	if err != nil {
		return err
	}
	defer tpm.Close()
	_, sealed, err := tpm2.Seal(tpm, opts)
	if err != nil {
		return err
	}
	b, err := tpm2.NewToken(sealed, -1).Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(pos[1], append(b, '\n'), 0o600)
}

// sealOptions converts the sealing flags shared by "tpm seal" and
// "luks enroll-tpm2"; the PIN, if any, comes from the environment variables
// pinVars (see pinFromEnv).
func sealOptions(pcrs, bank, pubKey, pubPCRs string, pinVars []string) (tpm2.SealOptions, error) {
	var o tpm2.SealOptions
	var err error
	if o.PCRs, err = tpm2.ParsePCRs(pcrs); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.Bank, err = tpm2.ParseBank(bank); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.PIN, err = pinFromEnv(pinVars); err != nil {
		return o, err
	}
	if pubKey == "" {
		return o, nil
	}
	b, err := os.ReadFile(pubKey)
	if err != nil {
		return o, err
	}
	if o.PublicKey, err = tpm2.ParsePublicKeyPEM(b); err != nil {
		return o, fmt.Errorf("%s: %w", pubKey, err)
	}
	if o.PublicKeyPCRs, err = tpm2.ParsePCRs(pubPCRs); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	return o, nil
}

func tpmUnseal(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm unseal", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	sigFile := fs.String("pcrsig", "", ".pcrsig JSON file (signed PCR policy)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	b, err := readInput(pos[0])
	if err != nil {
		return err
	}
	tok, err := tpm2.ParseToken(b)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	secret, err := unsealToken(open, tok, *sigFile)
	if err != nil {
		return err
	}
	_, err = stdout.Write(secret)
	return err
}

// unsealToken opens the TPM and unseals tok, asking $PIN if it needs one.
func unsealToken(open func() (tpm2Conn, error), tok *tpm2.Token, sigFile string) ([]byte, error) {
	s, err := tok.Sealed()
	if err != nil {
		return nil, err
	}
	var opts tpm2.UnsealOptions
	if opts.PIN, err = pinFromEnv(pinEnv(s.PIN, "PIN")); err != nil {
		return nil, err
	}
	if sigFile != "" {
		if opts.Signature, err = os.ReadFile(sigFile); err != nil {
			return nil, err
		}
	}
	tpm, err := open()
	if err != nil {
		return nil, err
	}
	defer tpm.Close()
	return tpm2.Unseal(tpm, s, opts)
}

func tpmPredict(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm predict-pcr11", stdout, stderr)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	v, err := predictFile(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "11:sha256=%s\n", hex.EncodeToString(v))
	return nil
}

func predictFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	v, err := tpm2.PredictPCR11(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

func tpmSignPCR11(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm sign-pcr11", stdout, stderr)
	keyFile := fs.String("private-key", "", "PEM RSA private key (PKCS#1 or PKCS#8)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *keyFile == "" {
		return fmt.Errorf("%w: --private-key is required", errUsage)
	}
	signer, err := readSigner(*keyFile)
	if err != nil {
		return err
	}
	v, err := predictFile(pos[0])
	if err != nil {
		return err
	}
	b, err := tpm2.SignPCRPolicy(signer, tpm2.SHA256, []int{11}, map[int][]byte{11: v})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

func readSigner(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: parse private key: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot sign", path, k)
	}
	return s, nil
}

// readInput reads a file, or stdin for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// writeFileAtomic writes data to path atomically (package atomicfile).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}
