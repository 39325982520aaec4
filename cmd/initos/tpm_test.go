package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/tpm2/swtpmtest"
)

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("initos %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func TestTPMPCRs(t *testing.T) {
	dev := swtpmtest.Start(t).Device()
	out := runOK(t, "tpm", "pcrs", "--tpm2-device", dev)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 24 || lines[7] != "sha256:7="+strings.Repeat("0", 64) {
		t.Errorf("tpm pcrs = %d lines, line 7 %q; want 24 lines, PCR 7 zero", len(lines), lines[7])
	}
	out = runOK(t, "tpm", "pcrs", "--json", "--bank", "sha1", "--tpm2-device", dev, "7", "15")
	var got []map[string]any
	zero := strings.Repeat("0", 40)
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 ||
		got[0]["nr"] != 7.0 || got[0]["sha1"] != zero || got[1]["nr"] != 15.0 || got[1]["sha1"] != zero {
		t.Errorf("tpm pcrs --json --bank sha1 7 15 = %q, want [{nr 7, sha1 0…}, {nr 15, sha1 0…}]", out)
	}
}

func TestTPMSealUnseal(t *testing.T) {
	dev := swtpmtest.Start(t).Device()
	dir := t.TempDir()
	in, sealed := filepath.Join(dir, "in"), filepath.Join(dir, "sealed.json")
	if err := os.WriteFile(in, []byte("disk key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PIN", "1234")
	runOK(t, "tpm", "seal", "--tpm2-device", dev, "--efivarfs", fakeEFI(t, 1, 0), "--pcrs", "7+11", "--pin", in, sealed)
	if got := runOK(t, "tpm", "unseal", sealed, "--tpm2-device", dev); got != "disk key" {
		t.Errorf("tpm unseal = %q, want %q", got, "disk key")
	}
	t.Setenv("PIN", "4321")
	if _, _, code, msg := initosExit("tpm", "unseal", "--tpm2-device", dev, sealed); code != 2 || !strings.Contains(msg, "wrong TPM PIN") {
		t.Errorf("tpm unseal with wrong PIN = exit %d, %q, want exit 2, wrong TPM PIN", code, msg)
	}
	// Secure Boot off: binding PCR 7 is refused (exit 5), other PCRs are not.
	off := fakeEFI(t, 0, 0)
	if _, _, code, msg := initosExit("tpm", "seal", "--tpm2-device", dev, "--efivarfs", off, in, sealed); code != exitTPMSecureBoot || !strings.Contains(msg, "SecureBoot=0") {
		t.Errorf("tpm seal to PCR 7 with Secure Boot off = exit %d, %q, want exit %d", code, msg, exitTPMSecureBoot)
	}
	runOK(t, "tpm", "seal", "--tpm2-device", dev, "--efivarfs", off, "--pcrs", "15:sha256="+strings.Repeat("0", 64), in, sealed)
	t.Setenv("PIN", "")
	if got := runOK(t, "tpm", "unseal", sealed, "--tpm2-device", dev); got != "disk key" {
		t.Errorf("tpm unseal of a PCR 15 = 0 token = %q, want %q", got, "disk key")
	}
	tpmExtend(t, swtpmFromDevice(dev), 15, "volume opened")
	if _, _, code, msg := initosExit("tpm", "unseal", "--tpm2-device", dev, sealed); code != exitTPMPolicy || !strings.Contains(msg, "PCR 15 is ") {
		t.Errorf("tpm unseal after extending PCR 15 = exit %d, %q, want exit %d naming PCR 15", code, msg, exitTPMPolicy)
	}
	withStdin(t, strings.Repeat("x", maxKeyFile+1))
	if _, _, code, msg := initosExit("tpm", "seal", "--tpm2-device", dev, "--force", "-", sealed); code != 1 || !strings.Contains(msg, "more than 8388608 bytes") {
		t.Errorf("tpm seal of 8 MiB + 1 from stdin = exit %d, %q", code, msg)
	}
}

func swtpmFromDevice(dev string) *swtpmtest.Swtpm {
	return &swtpmtest.Swtpm{Socket: strings.TrimPrefix(dev, "swtpm:path=")}
}

func TestTPMSignedPCR11(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, uki := filepath.Join(dir, "key.pem"), filepath.Join(dir, "uki.efi")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	stub, err := os.ReadFile("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
	if err != nil {
		testenv.Missing(t, "systemd-boot-efi stub not installed")
	}
	os.WriteFile(uki, stub, 0o644)
	pred := runOK(t, "tpm", "predict-pcr11", uki)
	if !strings.HasPrefix(pred, "11:sha256=") || len(strings.TrimSpace(pred)) != len("11:sha256=")+64 {
		t.Errorf("tpm predict-pcr11 = %q", pred)
	}
	sig := runOK(t, "tpm", "sign-pcr11", "--private-key", keyFile, uki)
	if !strings.HasPrefix(sig, `{"sha256":[{"pcrs":[11],"pkfp":"`) {
		t.Errorf("tpm sign-pcr11 = %q, want .pcrsig JSON", sig)
	}
}

func TestTPMUsage(t *testing.T) {
	for _, args := range [][]string{
		{"tpm", "seal", "onlyone"},
		{"tpm", "seal", "--pcrs", "99", "a", "b"},
		{"tpm", "pcrs", "--bank", "md5"},
		{"tpm", "pcrs", "--tpm2-device", "swtpm:bogus=1"},
		{"tpm", "sign-pcr11", "uki"},
		{"tpm", "pcrs", "99"},
		{"tpm", "seal", "--pcrs", "15:sha256=zz", "a", "b"},
	} {
		err := run(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer))
		if !errors.Is(err, errUsage) {
			t.Errorf("initos %s = %v, want usage error", strings.Join(args, " "), err)
		}
	}
	_, _, code, msg := initosExit("tpm", "pcrs", "--tpm2-device", filepath.Join(t.TempDir(), "tpm0"))
	if code != exitTPMAbsent || !strings.Contains(msg, "no TPM found") {
		t.Errorf("tpm pcrs on an absent device = exit %d, %q, want exit %d, no TPM found", code, msg, exitTPMAbsent)
	}
	for _, verb := range []string{"pcrs", "seal", "unseal", "predict-pcr11", "sign-pcr11"} {
		out, _, code, _ := initosExit("tpm", verb, "--help")
		if code != 0 || !strings.HasPrefix(out, "usage: initos tpm "+verb+" ") || strings.Contains(out, "[FLAGS] [ARGS]") {
			t.Errorf("initos tpm %s --help = exit %d, %q", verb, code, out)
		}
	}
}
