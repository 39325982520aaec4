package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/internal/atomicfile"
	"initos/tpm2"
)

func init() {
	register("tpm", "TPM2 PCRs, sealing, PCR 11 prediction", runTPM)
	describe("tpm pcrs", "[FLAGS] [PCR...]",
		"Print the PCRs of one bank (all 24 unless PCR indexes are given), one \"sha256:7=HEX\" line each, or "+
			"with --json the array systemd-analyze pcrs --json prints. Exit status 4 when there is no TPM.")
	describe("tpm seal", "[FLAGS] IN OUT",
		"Seal the secret in file IN (- for stdin, at most 8 MiB; the TPM takes at most 128 bytes) to the TPM's "+
			"PCRs and write the systemd-tpm2 token JSON (with an empty keyslots list) to OUT. --pcrs binds PCRs by "+
			"current value, or by a literal value as 15:sha256=HEX. Binding PCR 7 is refused while Secure Boot is "+
			"off or the firmware is in setup mode (exit status 5), unless --force.")
	describe("tpm unseal", "[FLAGS] FILE",
		"Unseal the token JSON in FILE (- for stdin) and write the secret to stdout. A PIN comes from $PIN, a "+
			"signed policy's signature from --pcrsig. Exit status 2 wrong PIN, 3 the TPM refuses (the error names "+
			"the PCRs that differ), 4 no TPM.")
	describe("tpm predict-pcr11", "UKI",
		"Print the PCR 11 value systemd-stub 252 measures when it boots UKI, as 11:sha256=HEX.")
	describe("tpm sign-pcr11", "--private-key KEY UKI",
		"Sign UKI's PCR 11 value with the RSA private key and print the .pcrsig JSON systemd-measure sign "+
			"would write (what the build puts into the UKI for a signed PCR 11 policy).")
}

func runTPM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "tpm", map[string]subcommand{
		"pcrs":          {"print the PCRs of a bank", tpmPCRs},
		"seal":          {"seal a secret to PCRs: [flags] IN OUT (OUT: systemd-tpm2 token JSON)", tpmSeal},
		"unseal":        {"unseal a sealed token JSON to stdout: [flags] FILE", tpmUnseal},
		"predict-pcr11": {"print the PCR 11 value systemd-stub produces for a UKI: UKI", tpmPredict},
		"sign-pcr11":    {"sign a UKI's PCR 11 value (.pcrsig JSON out)", tpmSignPCR11},
	}, args, stdout, stderr)
}

func tpmPCRs(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm pcrs", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	bankName := fs.String("bank", "sha256", "PCR `bank`: sha256, sha1, sha384 or sha512")
	asJSON := fs.Bool("json", false, "print JSON like systemd-analyze pcrs --json: [{\"nr\":0,\"sha256\":\"…\"},…]")
	pos, err := parseFlags(fs, args, 0, -1)
	if err != nil {
		return err
	}
	bank, err := tpm2.ParseBank(*bankName)
	if err != nil {
		return usageError(fs, "--bank: %v", err)
	}
	pcrs, err := tpm2.ParsePCRs(strings.Join(pos, "+"))
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if len(pcrs) == 0 {
		for i := range tpm2.NumPCRs {
			pcrs = append(pcrs, i)
		}
	}
	tpm, err := open()
	if err != nil {
		return tpmExit(err)
	}
	defer tpm.Close()
	v, err := tpm2.ReadPCRs(tpm, bank, pcrs)
	if err != nil {
		return tpmExit(err)
	}
	return printPCRs(stdout, *asJSON, bank, pcrs, v)
}

func printPCRs(w io.Writer, asJSON bool, bank tpm2.Bank, pcrs []int, v map[int][]byte) error {
	name := tpm2.BankName(bank)
	if !asJSON {
		for _, i := range pcrs {
			fmt.Fprintf(w, "%s:%d=%x\n", name, i, v[i])
		}
		return nil
	}
	out := make([]map[string]any, len(pcrs))
	for k, i := range pcrs {
		out[k] = map[string]any{"nr": i, name: hex.EncodeToString(v[i])}
	}
	return writeJSON(w, out)
}

func tpmSeal(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm seal", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	var pf policyFlags
	pf.register(fs, "", "pin", "also require a PIN (read from $PIN)")
	var sb secureBootFlags
	sb.register(fs)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	p, err := pf.policy("PIN")
	if err != nil {
		return err
	}
	if err := sb.check(p, stderr); err != nil {
		return tpmExit(err)
	}
	secret, err := readBounded("IN", pos[0])
	if err != nil {
		return err
	}
	defer clear(secret)
	tpm, err := open()
	if err != nil {
		return tpmExit(err)
	}
	defer tpm.Close()
	o := tpm2.SealOptions{Bank: p.Bank, PCRs: p.PCRs, PCRValues: p.PCRValues,
		PublicKey: p.PublicKey, PublicKeyPCRs: p.PublicKeyPCRs, PIN: p.PIN, Secret: secret}
	_, sealed, err := tpm2.Seal(tpm, o)
	if err != nil {
		return tpmExit(err)
	}
	b, err := tpm2.NewToken(sealed, -1).Marshal()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(pos[1], append(b, '\n'), 0o600)
}

func tpmUnseal(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tpm unseal", stdout, stderr)
	open := tpm2DeviceFlag(fs)
	sigFile := fs.String("pcrsig", "", ".pcrsig JSON `file` (signed PCR policy)")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	b, err := readBounded("token", pos[0])
	if err != nil {
		return err
	}
	tok, err := tpm2.ParseToken(b)
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	s, err := tok.Sealed()
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	var opts tpm2.UnsealOptions
	if opts.PIN, err = pinFromEnv(pinEnv(s.PIN, "PIN")); err != nil {
		return err
	}
	if *sigFile != "" {
		if opts.Signature, err = readBounded("--pcrsig", *sigFile); err != nil {
			return err
		}
	}
	tpm, err := open()
	if err != nil {
		return tpmExit(err)
	}
	defer tpm.Close()
	secret, err := tpm2.Unseal(tpm, s, opts)
	if err != nil {
		return tpmExit(err)
	}
	defer clear(secret)
	_, err = stdout.Write(secret)
	return err
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
