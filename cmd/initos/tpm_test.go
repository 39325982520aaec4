package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
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
}

func TestTPMSealUnseal(t *testing.T) {
	dev := swtpmtest.Start(t).Device()
	dir := t.TempDir()
	in, sealed := filepath.Join(dir, "in"), filepath.Join(dir, "sealed.json")
	if err := os.WriteFile(in, []byte("disk key"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PIN", "1234")
	runOK(t, "tpm", "seal", "--tpm2-device", dev, "--pcrs", "7+11", "--pin", in, sealed)
	if got := runOK(t, "tpm", "unseal", sealed, "--tpm2-device", dev); got != "disk key" {
		t.Errorf("tpm unseal = %q, want %q", got, "disk key")
	}
	t.Setenv("PIN", "4321")
	err := run(context.Background(), []string{"tpm", "unseal", "--tpm2-device", dev, sealed}, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "wrong TPM PIN") {
		t.Errorf("tpm unseal with wrong PIN = %v, want wrong TPM PIN", err)
	}
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
	} {
		err := run(context.Background(), args, new(bytes.Buffer), new(bytes.Buffer))
		if !errors.Is(err, errUsage) {
			t.Errorf("initos %s = %v, want usage error", strings.Join(args, " "), err)
		}
	}
	err := run(context.Background(), []string{"tpm", "pcrs", "--tpm2-device", filepath.Join(t.TempDir(), "tpm0")}, new(bytes.Buffer), new(bytes.Buffer))
	if err == nil || !strings.Contains(err.Error(), "no TPM found") {
		t.Errorf("tpm pcrs on an absent device = %v, want no TPM found", err)
	}
}
