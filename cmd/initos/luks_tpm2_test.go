package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/efivar"
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

// fakeEFI returns an efivarfs-like directory with SecureBoot and SetupMode.
func fakeEFI(t *testing.T, secureBoot, setupMode byte) string {
	t.Helper()
	s := &efivar.Dir{Path: t.TempDir()}
	for name, v := range map[string]byte{"SecureBoot": secureBoot, "SetupMode": setupMode} {
		if err := s.Set(name, efivar.GlobalVariable, 6, []byte{v}); err != nil {
			t.Fatal(err)
		}
	}
	return s.Path
}

func initos(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), err
}

// initosExit runs initos and returns stdout, stderr, the exit status and
// the error message main would print.
func initosExit(args ...string) (stdout, stderr string, code int, msg string) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	var m bytes.Buffer
	code = exitCode(err, &m)
	return out.String(), errOut.String(), code, m.String()
}

func TestLuksEnrollUnlockTPM2(t *testing.T) {
	sw := swtpmtest.Start(t)
	tpmExtend(t, sw, 7, "secure boot on")
	efi := fakeEFI(t, 1, 0)
	img, key := tpm2Image(t)
	zero := strings.Repeat("0", 64)
	out, err := initos("luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--efivarfs", efi,
		"--tpm2-pcrs", "7+11+15:sha256="+zero, "--unlock-key-file", key, img)
	if err != nil || out != "New TPM2 token enrolled as key slot 1.\n" {
		t.Fatalf("luks enroll-tpm2 = %q, %v", out, err)
	}
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img))
	for _, want := range []string{"systemd-tpm2", "tpm2-hash-pcrs:   7+11+15", "Hash:       sha512", "Iterations: 1000"} {
		if !strings.Contains(dump, want) {
			t.Errorf("cryptsetup luksDump lacks %q:\n%s", want, dump)
		}
	}
	tok := string(testenv.Run(t, "cryptsetup", "token", "export", "--token-id", "0", img))
	for _, want := range []string{`"initos-tpm2-primary-name":"000b`, `"initos-tpm2-pcr-literal":[15]`, `"15":"` + zero} {
		if !strings.Contains(tok, want) {
			t.Errorf("token lacks %s: %s", want, tok)
		}
	}
	out, err = initos("luks", "unlock-tpm2", "--json", "--tpm2-device", sw.Device(), "--tpm2-lock-pcrs", "11", img)
	var rep luksUnlockReport
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep != (luksUnlockReport{Token: 0, Keyslot: 1}) {
		t.Fatalf("luks unlock-tpm2 --json = %q, %v", out, err)
	}
	_, _, code, msg := initosExit("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img)
	if code != exitTPMPolicy || !strings.Contains(msg, "token 0: unseal: PCR policy mismatch: PCR 11 is ") {
		t.Errorf("luks unlock-tpm2 after --tpm2-lock-pcrs = exit %d, %q; want exit %d naming PCR 11", code, msg, exitTPMPolicy)
	}
}

// TestLuksEnrollTPM2SecureBoot: binding PCR 7 is refused while Secure Boot
// is off or the firmware is in setup mode, unless --force; other PCRs are
// not checked.
func TestLuksEnrollTPM2SecureBoot(t *testing.T) {
	sw := swtpmtest.Start(t)
	img, key := tpm2Image(t)
	base := []string{"luks", "enroll-tpm2", "--tpm2-device", sw.Device(), "--unlock-key-file", key}
	for _, tc := range []struct {
		name     string
		efi      string
		extra    []string
		wantCode int
		wantMsg  string
	}{
		{"off", fakeEFI(t, 0, 0), nil, exitTPMSecureBoot, "Secure Boot is off (SecureBoot=0)"},
		{"setup-mode", fakeEFI(t, 0, 1), nil, exitTPMSecureBoot, "setup mode (SetupMode=1)"},
		{"no-efivarfs", filepath.Join(t.TempDir(), "none"), nil, exitTPMSecureBoot, "Secure Boot is off"},
		{"off-forced", fakeEFI(t, 0, 0), []string{"--force"}, 0, ""},
		{"off-pcr11-only", fakeEFI(t, 0, 0), []string{"--tpm2-pcrs", "11"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append(append([]string{}, base...), "--efivarfs", tc.efi), tc.extra...)
			_, stderr, code, msg := initosExit(append(args, img)...)
			if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("enroll-tpm2 (%s) = exit %d, %q; want exit %d, %q", tc.name, code, msg, tc.wantCode, tc.wantMsg)
			}
			if tc.name == "off-forced" && !strings.Contains(stderr, "warning: check Secure Boot") {
				t.Errorf("enroll-tpm2 --force did not warn on stderr: %q", stderr)
			}
		})
	}
}

func TestLuksTPM2Errors(t *testing.T) {
	sw := swtpmtest.Start(t)
	efi := fakeEFI(t, 1, 0)
	img, key := tpm2Image(t)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("wrong"), 0o600)
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, make([]byte, maxKeyFile+1), 0o600)
	absent := "swtpm:path=" + filepath.Join(t.TempDir(), "none")
	t.Setenv("PASSWORD", "")
	enroll := []string{"luks", "enroll-tpm2", "--efivarfs", efi}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"unlock-no-token", []string{"luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img}, exitTPMAbsent, "no systemd-tpm2 token in the LUKS2 header"},
		{"unlock-no-tpm", []string{"luks", "unlock-tpm2", "--tpm2-device", absent, img}, exitTPMAbsent, "no TPM found"},
		{"unlock-measure-no-name", []string{"luks", "unlock-tpm2", "--tpm2-measure-pcr", img}, 2, "--tpm2-measure-pcr needs NAME"},
		{"unlock-bad-lock", []string{"luks", "unlock-tpm2", "--tpm2-lock-pcrs", "x", img}, 2, "--tpm2-lock-pcrs"},
		{"enroll-wrong-pass", append(enroll, "--tpm2-device", sw.Device(), "--unlock-key-file", bad, img), 2, "no keyslot opens with this passphrase"},
		{"enroll-big-key", append(enroll, "--tpm2-device", sw.Device(), "--unlock-key-file", big, img), 1, "more than 8388608 bytes"},
		{"enroll-no-tpm", append(enroll, "--tpm2-device", absent, "--unlock-key-file", key, img), exitTPMAbsent, "no TPM found"},
		{"enroll-no-pass", append(enroll, "--tpm2-device", sw.Device(), img), 2, "--unlock-key-file or $PASSWORD is required"},
		{"enroll-bad-literal", append(enroll, "--tpm2-pcrs", "15:sha256=00", "--unlock-key-file", key, img), 2, "value is 1 bytes, want 32"},
		{"enroll-literal-bank", append(enroll, "--tpm2-pcrs", "15:sha1="+strings.Repeat("0", 40), "--unlock-key-file", key, img), 2, "literal PCR values are for bank sha1"},
		{"enroll-bad-device", append(enroll, "--tpm2-device", "swtpm:bogus=1", "--unlock-key-file", key, img), 2, "--tpm2-device"},
		{"reseal-no-token", []string{"luks", "reseal-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(), "--unlock-key-file", key, img}, exitTPMAbsent, "no systemd-tpm2 token"},
	} {
		_, _, code, msg := initosExit(tc.args...)
		if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
			t.Errorf("initos %s = exit %d, %q; want exit %d, %q", tc.name, code, msg, tc.wantCode, tc.wantMsg)
		}
	}
	if n := strings.Count(string(testenv.Run(t, "cryptsetup", "luksDump", img)), "luks2\n"); n != 1 {
		t.Errorf("failed enrollments left %d keyslots, want 1", n)
	}
}

// TestLuksTPM2Stdin: the passphrase may come on stdin, bounded to 8 MiB.
func TestLuksTPM2Stdin(t *testing.T) {
	sw := swtpmtest.Start(t)
	img, _ := tpm2Image(t)
	enroll := []string{"luks", "enroll-tpm2", "--efivarfs", fakeEFI(t, 1, 0), "--tpm2-device", sw.Device(), "--unlock-key-file", "-", img}
	for _, tc := range []struct {
		name, stdin string
		wantCode    int
		wantMsg     string
	}{
		{"ok", "passphrase", 0, ""},
		{"too-big", strings.Repeat("x", maxKeyFile+1), 1, "read --unlock-key-file: more than 8388608 bytes"},
	} {
		withStdin(t, tc.stdin)
		_, _, code, msg := initosExit(enroll...)
		if code != tc.wantCode || !strings.Contains(msg, tc.wantMsg) {
			t.Errorf("enroll-tpm2 with stdin %s = exit %d, %q; want exit %d, %q", tc.name, code, msg, tc.wantCode, tc.wantMsg)
		}
	}
}

// withStdin makes os.Stdin read s until the test ends.
func withStdin(t *testing.T, s string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, s)
	f.Seek(0, io.SeekStart)
	old := os.Stdin
	os.Stdin = f
	t.Cleanup(func() { os.Stdin = old; f.Close() })
}

// TestLuksResealTPM2: after PCR 7 changed, reseal-tpm2 (with the recovery
// key) makes unlock-tpm2 work again and leaves one token.
func TestLuksResealTPM2(t *testing.T) {
	sw := swtpmtest.Start(t)
	efi := fakeEFI(t, 1, 0)
	tpmExtend(t, sw, 7, "db v1")
	img, key := tpm2Image(t)
	if _, err := initos("luks", "enroll-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(), "--unlock-key-file", key, img); err != nil {
		t.Fatal(err)
	}
	tpmExtend(t, sw, 7, "db v2")
	if _, _, code, msg := initosExit("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img); code != exitTPMPolicy || !strings.Contains(msg, "PCR 7 is ") {
		t.Fatalf("unlock-tpm2 after the PCR 7 change = exit %d, %q; want exit %d naming PCR 7", code, msg, exitTPMPolicy)
	}
	out, err := initos("luks", "reseal-tpm2", "--json", "--efivarfs", efi, "--tpm2-device", sw.Device(), "--unlock-key-file", key, img)
	if err != nil {
		t.Fatalf("reseal-tpm2: %v", err)
	}
	var rep luksTPM2Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Keyslot != 2 || rep.Token != 1 {
		t.Errorf("reseal-tpm2 --json = %q, want keyslot 2, token 1", out)
	}
	if _, err := initos("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img); err != nil {
		t.Errorf("unlock-tpm2 after reseal-tpm2: %v", err)
	}
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img))
	if strings.Count(dump, "systemd-tpm2") != 1 || strings.Contains(dump, "\n  1: luks2") {
		t.Errorf("after reseal-tpm2 the old token or keyslot 1 remains:\n%s", dump)
	}
}

// TestLuksEnrollTPM2PINAndPublicKey: --tpm2-with-pin reads $NEWPIN, else
// $PIN (and names $NEWPIN when both are unset), the unlock wants the same
// PIN in $PIN; --tpm2-public-key adds a signed PCR 11 policy that cannot
// unseal without a signature.
func TestLuksEnrollTPM2PINAndPublicKey(t *testing.T) {
	sw := swtpmtest.Start(t)
	efi := fakeEFI(t, 1, 0)
	img, key := tpm2Image(t)
	enroll := []string{"luks", "enroll-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(), "--tpm2-with-pin", "--unlock-key-file", key, img}
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
	if _, _, code, msg := initosExit(unlock...); code != 2 || !strings.Contains(msg, "wrong TPM PIN") {
		t.Errorf("luks unlock-tpm2 with a wrong $PIN = exit %d, %q; want exit 2, wrong TPM PIN", code, msg)
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
	if _, err := initos("luks", "enroll-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(), img); err != nil {
		t.Errorf("luks enroll-tpm2 with $PASSWORD: %v", err)
	}

	img2, key2 := tpm2Image(t)
	pub := filepath.Join(t.TempDir(), "pub.pem")
	testenv.Run(t, "openssl", "genrsa", "-out", pub+".key", "2048")
	testenv.Run(t, "openssl", "rsa", "-in", pub+".key", "-pubout", "-out", pub)
	if _, err := initos("luks", "enroll-tpm2", "--efivarfs", efi, "--tpm2-device", sw.Device(), "--tpm2-pcrs", "7",
		"--tpm2-public-key", pub, "--unlock-key-file", key2, img2); err != nil {
		t.Fatalf("luks enroll-tpm2 --tpm2-public-key: %v", err)
	}
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img2))
	for _, want := range []string{"tpm2-pubkey-pcrs: 11", "tpm2-hash-pcrs:   7"} {
		if !strings.Contains(dump, want) {
			t.Errorf("cryptsetup luksDump lacks %q:\n%s", want, dump)
		}
	}
	_, _, code, msg := initosExit("luks", "unlock-tpm2", "--tpm2-signature", "/nonexistent/none.json", "--tpm2-device", sw.Device(), img2)
	if code != 1 || !strings.Contains(msg, "--tpm2-signature") {
		t.Errorf("unlock-tpm2 with a missing signature file = exit %d, %q", code, msg)
	}
	_, _, code, msg = initosExit("luks", "unlock-tpm2", "--tpm2-device", sw.Device(), img2)
	if code != exitTPMPolicy || !strings.Contains(msg, "no signature was given") {
		t.Errorf("luks unlock-tpm2 of a signed-policy token without a signature = exit %d, %q, want exit %d, no signature was given", code, msg, exitTPMPolicy)
	}
}

func TestLuksTPM2Help(t *testing.T) {
	for _, verb := range []string{"enroll-tpm2", "unlock-tpm2", "reseal-tpm2"} {
		out, _, code, _ := initosExit("luks", verb, "--help")
		if code != 0 || !strings.HasPrefix(out, "usage: initos luks "+verb+" [FLAGS] DEVICE") || !strings.Contains(out, "  --tpm2-device") {
			t.Errorf("initos luks %s --help = exit %d, %q", verb, code, out)
		}
	}
}
