package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/pecoff"
	"initos/tpm2"
)

// TestUKIBuildPCRSigned: `uki build --pcr-private-key` embeds .pcrpkey and
// a .pcrsig equal to what `tpm sign-pcr11` computes for the built image.
func TestUKIBuildPCRSigned(t *testing.T) {
	dir := ukiTestInputs(t)
	out := filepath.Join(dir, "uki.efi")
	stdout := runUKICLI(t, false, "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"),
		"--initrd", filepath.Join(dir, "initrd"), "--cmdline", "quiet", "--os-release", filepath.Join(dir, "os-release"),
		"--pcr-private-key", ukiTestKey, "--pcr-banks", "sha256", "--phases", ":,enter-initrd",
		"--key", ukiTestKey, "--cert", ukiTestCert, "-o", out)
	if n := strings.Count(stdout, "11:sha256="); n != 2 {
		t.Errorf("uki build printed %d PCR 11 values, want 2 (two phase paths):\n%s", n, stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := pecoff.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := readSigner(ukiTestKey)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := tpm2.ParsePublicKeyPEM(img.Section(".pcrpkey")); err != nil || !pub.Equal(signer.Public()) {
		t.Errorf(".pcrpkey = %q, %v, want the public key of %s", img.Section(".pcrpkey"), err, ukiTestKey)
	}
	sig, err := tpm2.ParsePCRSignature(img.Section(".pcrsig"))
	if err != nil || len(sig["sha256"]) != 2 {
		t.Fatalf(".pcrsig = %s (%v), want two sha256 entries", img.Section(".pcrsig"), err)
	}
	var want, stderr bytes.Buffer
	if err := run(context.Background(), []string{"tpm", "sign-pcr11", "--private-key", ukiTestKey, out}, &want, &stderr); err != nil {
		t.Fatalf("tpm sign-pcr11: %v\n%s", err, stderr.String())
	}
	boot, err := tpm2.ParsePCRSignature(want.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if g, w := sig["sha256"][0], boot["sha256"][0]; g.Pol != w.Pol || g.Sig != w.Sig || g.PKFP != w.PKFP {
		t.Errorf(".pcrsig entry for ':' = %+v, want tpm sign-pcr11's %+v", sig["sha256"][0], boot["sha256"][0])
	}
	if got := runUKICLI(t, false, "verify", "--cert", ukiTestCert, out); !strings.Contains(got, "OK") {
		t.Errorf("uki verify = %q, want OK (Authenticode covers .pcrsig)", got)
	}
}

func TestUKIBuildPCRErrors(t *testing.T) {
	dir := ukiTestInputs(t)
	base := []string{"uki", "build", "--stub", ukiTestStub, "--linux", filepath.Join(dir, "vmlinuz"), "-o", filepath.Join(dir, "x.efi")}
	sigFile := filepath.Join(dir, "sig.json")
	if err := os.WriteFile(sigFile, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"phases without key", []string{"--phases", "enter-initrd"}, true, "--phases need --pcr-private-key"},
		{"public key without key", []string{"--pcr-public-key", "k.pem"}, true, "need --pcr-private-key"},
		{"pcrsig and key", []string{"--pcr-private-key", ukiTestKey, "--pcrsig", sigFile}, true, "exclude each other"},
		{"bad bank", []string{"--pcr-private-key", ukiTestKey, "--pcr-banks", "md5"}, true, "--pcr-banks"},
		{"sha1 bank", []string{"--pcr-private-key", ukiTestKey, "--pcr-banks", "sha1"}, false, "sha1 unsupported"},
		{"bad phases", []string{"--pcr-private-key", ukiTestKey, "--phases", "a::b"}, true, "empty word"},
		{"missing key", []string{"--pcr-private-key", filepath.Join(dir, "nope.pem")}, false, "no such file"},
		{"public key mismatch", []string{"--pcr-private-key", ukiTestKey, "--pcr-public-key", ukiOtherPub(t, dir)}, false, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append(base, tc.args...), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
				t.Errorf("initos %q = %v, want an error containing %q (usage error: %v)", tc.args, err, tc.want, tc.usage)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.efi")); err == nil {
				t.Error("a failed build left its output")
			}
		})
	}
}

// ukiOtherPub writes the public key of another certificate's key as PEM.
func ukiOtherPub(t *testing.T, dir string) string {
	t.Helper()
	certs, err := ukiLoadCerts(ukiOtherCrt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tpm2.EncodePublicKeyPEM(certs[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "other.pub.pem")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
