package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// tpmExtend extends a PCR of a running swtpm (then disconnects, so the
// single-client swtpm is free for the next tool).
func tpmExtend(t *testing.T, sw *swtpmtest.Swtpm, pcr int, event string) {
	t.Helper()
	d, _ := tpm2.ParseDevice(sw.Device())
	tpm, err := tpm2.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	h := sha256.Sum256([]byte(event))
	if err := tpm2.ExtendPCR(tpm, tpm2.SHA256, pcr, h[:]); err != nil {
		t.Fatal(err)
	}
}

// tpm2Image makes a LUKS2 image with cryptsetup (the oracle), keyslot 0
// opening with the returned key file.
func tpm2Image(t *testing.T) (img, key string) {
	t.Helper()
	dir := t.TempDir()
	img, key = filepath.Join(dir, "img"), filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, make([]byte, 20<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", img, key)
	return img, key
}

func initos(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

func TestLuksEnrollUnlockTPM2(t *testing.T) {
	sw := swtpmtest.Start(t)
	tpmExtend(t, sw, 7, "secure boot on")
	img, key := tpm2Image(t)
	out, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--tpm2-pcrs", "7+11", "--unlock-key-file", key, img)
	if err != nil || out != "New TPM2 token enrolled as key slot 1.\n" {
		t.Fatalf("luks enroll-tpm2 = %q, %v", out, err)
	}
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img))
	for _, want := range []string{"systemd-tpm2", "tpm2-hash-pcrs:   7+11", "Hash:       sha512", "Iterations: 1000"} {
		if !strings.Contains(dump, want) {
			t.Errorf("cryptsetup luksDump lacks %q:\n%s", want, dump)
		}
	}
	if out, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), "--tpm2-lock-pcrs", "11", img); err != nil || out != "" {
		t.Fatalf("luks unlock-tpm2 = %q, %v, want silent success", out, err)
	}
	_, err = initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img)
	if err == nil || !strings.Contains(err.Error(), "PCR policy mismatch") {
		t.Errorf("luks unlock-tpm2 after --tpm2-lock-pcrs = %v, want PCR policy mismatch", err)
	}
}

func TestLuksUnlockTPM2Errors(t *testing.T) {
	sw := swtpmtest.Start(t)
	img, key := tpm2Image(t)
	_, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img)
	if err == nil || !strings.Contains(err.Error(), "no systemd-tpm2 token") {
		t.Errorf("unlock-tpm2 without token = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--unlock-key-file", bad, img); err == nil {
		t.Error("enroll-tpm2 with a wrong passphrase = nil error")
	}
	absent := "swtpm:path=" + filepath.Join(t.TempDir(), "none")
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", absent, "--unlock-key-file", key, img); err == nil || !strings.Contains(err.Error(), "no TPM found") {
		t.Errorf("enroll-tpm2 without TPM = %v, want no TPM found", err)
	}
	t.Setenv("PASSWORD", "")
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), img); err == nil || !strings.Contains(err.Error(), "--unlock-key-file or $PASSWORD") {
		t.Errorf("enroll-tpm2 without a passphrase = %v, want --unlock-key-file or $PASSWORD is required", err)
	}
	if n := strings.Count(string(testenv.Run(t, "cryptsetup", "luksDump", img)), "luks2\n"); n != 1 {
		t.Errorf("failed enrollments left %d keyslots, want 1", n)
	}
}

// TestLuksTPM2SystemdInterop: a token systemd-cryptenroll 252 wrote is
// opened by "initos luks unlock-tpm2", and one "initos luks enroll-tpm2"
// wrote is unsealed by systemd-cryptsetup 252 (up to the device-mapper
// step, which this host lacks).
func TestLuksTPM2SystemdInterop(t *testing.T) {
	enroll := testenv.Tool(t, "systemd-cryptenroll")
	sw := swtpmtest.StartTCP(t)
	tpmExtend(t, sw, 7, "secure boot on")

	img, key := tpm2Image(t)
	if out, err := exec.Command(enroll, "--unlock-key-file="+key, "--tpm2-device="+sw.Device(), "--tpm2-pcrs=7", img).CombinedOutput(); err != nil {
		t.Fatalf("systemd-cryptenroll: %v\n%s", err, out)
	}
	if _, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img); err != nil {
		t.Errorf("initos luks unlock-tpm2 on systemd's enrollment: %v", err)
	}

	img2, key2 := tpm2Image(t)
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--unlock-key-file", key2, img2); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/lib/systemd/systemd-cryptsetup", "attach", "initos-cli-interop", img2, "-",
		fmt.Sprintf("tpm2-device=swtpm:port=%d,headless=true", sw.Port))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug")
	log, _ := cmd.CombinedOutput()
	for _, want := range []string{"Completed TPM2 key unsealing", "[keyslot 1] using passphrase"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("systemd-cryptsetup attach on our enrollment did not log %q:\n%s", want, log)
		}
	}
}

// TestLuksEnrollTPM2PINAndPublicKey: --tpm2-with-pin reads $NEWPIN, else
// $PIN (and names $NEWPIN when both are unset), the unlock wants the same
// PIN in $PIN;
// --tpm2-public-key adds a signed PCR 11 policy that cannot unseal without
// a signature.
func TestLuksEnrollTPM2PINAndPublicKey(t *testing.T) {
	sw := swtpmtest.Start(t)
	img, key := tpm2Image(t)
	enroll := []string{"luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--tpm2-with-pin", "--unlock-key-file", key, img}
	t.Setenv("PIN", "")
	t.Setenv("NEWPIN", "")
	if _, err := initos(enroll...); err == nil || !strings.Contains(err.Error(), "$NEWPIN") {
		t.Errorf("luks enroll-tpm2 --tpm2-with-pin without $NEWPIN = %v, want an error naming $NEWPIN", err)
	}
	t.Setenv("NEWPIN", "1234")
	if _, err := initos(enroll...); err != nil {
		t.Fatalf("luks enroll-tpm2 --tpm2-with-pin: %v", err)
	}
	unlock := []string{"luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img}
	t.Setenv("PIN", "9999")
	if _, err := initos(unlock...); err == nil || !strings.Contains(err.Error(), "wrong TPM PIN") {
		t.Errorf("luks unlock-tpm2 with a wrong $PIN = %v, want wrong TPM PIN", err)
	}
	t.Setenv("PIN", "1234")
	if _, err := initos(unlock...); err != nil {
		t.Errorf("luks unlock-tpm2 with the right $PIN: %v", err)
	}
	t.Setenv("NEWPIN", "")
	if _, err := initos(enroll...); err != nil {
		t.Errorf("luks enroll-tpm2 --tpm2-with-pin with only $PIN set: %v", err)
	}

	// The passphrase may come from $PASSWORD, as for systemd-cryptenroll.
	t.Setenv("PASSWORD", "passphrase")
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), img); err != nil {
		t.Errorf("luks enroll-tpm2 with $PASSWORD: %v", err)
	}

	img2, key2 := tpm2Image(t)
	pub := filepath.Join(t.TempDir(), "pub.pem")
	testenv.Run(t, "openssl", "genrsa", "-out", pub+".key", "2048")
	testenv.Run(t, "openssl", "rsa", "-in", pub+".key", "-pubout", "-out", pub)
	if _, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--tpm2-pcrs", "7",
		"--tpm2-public-key", pub, "--unlock-key-file", key2, img2); err != nil {
		t.Fatalf("luks enroll-tpm2 --tpm2-public-key: %v", err)
	}
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img2))
	for _, want := range []string{"tpm2-pubkey-pcrs: 11", "tpm2-hash-pcrs:   7"} {
		if !strings.Contains(dump, want) {
			t.Errorf("cryptsetup luksDump lacks %q:\n%s", want, dump)
		}
	}
	if _, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img2); err == nil || !strings.Contains(err.Error(), "no signature was given") {
		t.Errorf("luks unlock-tpm2 of a signed-policy token without a signature = %v, want no signature was given", err)
	}
}
