package tpm2

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

// Interop with Debian's systemd 252 against one swtpm over TCP (its
// libtss2 swtpm TCTI sends raw commands; we use the simulator framing;
// swtpm takes both). The host has no
// device-mapper, so "systemd opens our volume" is proven up to the dm
// step: systemd-cryptsetup attach logs that it unsealed our token's blob
// with its own policy session and which keyslot it opened; the keyslot
// passphrase itself is checked with cryptsetup --test-passphrase.

const systemdCryptsetup = "/lib/systemd/systemd-cryptsetup"

// luksImage formats a small LUKS2 image (pbkdf2, few iterations: speed)
// whose keyslot 0 opens with the returned key file.
func luksImage(t *testing.T) (img, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	img, keyFile = filepath.Join(dir, "img"), filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("initial passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 20<<20); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", img, keyFile)
	return img, keyFile
}

// withTPM opens the swtpm for fn and closes it after: the swtpm server
// serves one client at a time, so the systemd tools can only connect when
// we are not.
func withTPM(t *testing.T, sw *swtpm, fn func(tpm *Counter)) {
	t.Helper()
	tpm, err := Open(sw.Device)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	fn(&Counter{TPM: tpm})
}

func exportToken(t *testing.T, img string) *Token {
	t.Helper()
	out := testenv.Run(t, "cryptsetup", "token", "export", "--token-id", "0", img)
	tok, err := ParseToken(out)
	if err != nil {
		t.Fatalf("ParseToken(systemd's token): %v\n%s", err, out)
	}
	return tok
}

// testPassphrase checks that pass opens keyslot slot of img.
func testPassphrase(t *testing.T, img string, slot int, pass []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(f, pass, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "open", "--test-passphrase", "--key-slot", fmt.Sprint(slot), "--key-file", f, img)
}

// TestSystemdEnrollsWeUnseal: systemd-cryptenroll enrolls, we unseal, and
// base64(secret) opens systemd's keyslot.
func TestSystemdEnrollsWeUnseal(t *testing.T) {
	enroll := testenv.Tool(t, "systemd-cryptenroll")
	k := testKeys(t)[0]
	pubPEM, _ := EncodePublicKeyPEM(&k.PublicKey)
	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pubFile, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		pin    string
		signed bool
	}{
		{"pcr7", []string{"--tpm2-pcrs=7"}, "", false},
		{"pcr7+11-pin", []string{"--tpm2-pcrs=7+11", "--tpm2-with-pin=yes"}, "4321", false},
		{"signed-pcr11", []string{"--tpm2-pcrs=", "--tpm2-public-key=" + pubFile, "--tpm2-public-key-pcrs=11"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := startSwtpmTCP(t)
			withTPM(t, sw, func(tpm *Counter) { extend(t, tpm, 7, "secure boot on"); extend(t, tpm, 11, "uki") })
			img, keyFile := luksImage(t)
			cmd := exec.Command(enroll, append([]string{"--unlock-key-file=" + keyFile,
				"--tpm2-device=swtpm:host=127.0.0.1,port=" + fmt.Sprint(sw.Device.Port)}, append(tc.args, img)...)...)
			cmd.Env = append(os.Environ(), "NEWPIN="+tc.pin)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("systemd-cryptenroll: %v\n%s", err, out)
			}
			tok := exportToken(t, img)
			s, err := tok.Sealed()
			if err != nil {
				t.Fatal(err)
			}
			opts := UnsealOptions{}
			if tc.pin != "" {
				opts.PIN = []byte(tc.pin)
			}
			withTPM(t, sw, func(tpm *Counter) {
				if tc.signed {
					opts.Signature, err = SignPCRPolicy(k, SHA256, []int{11}, pcr11(t, tpm))
					if err != nil {
						t.Fatal(err)
					}
				}
				secret, err := Unseal(tpm, s, opts)
				if err != nil {
					t.Fatalf("Unseal(systemd's token): %v", err)
				}
				slot, _ := tok.Keyslot()
				testPassphrase(t, img, slot, []byte(base64.StdEncoding.EncodeToString(secret)))
				extend(t, tpm, 7, "secure boot off")
				extend(t, tpm, 11, "unsigned uki")
				if _, err := Unseal(tpm, s, opts); !errors.Is(err, ErrPolicyMismatch) {
					t.Errorf("Unseal after extending PCRs 7 and 11 = %v, want ErrPolicyMismatch", err)
				}
			})
		})
	}
}

// TestWeEnrollSystemdUnseals: we seal and write the token (cryptsetup adds
// the keyslot and imports the token, validated by systemd's token plugin);
// systemd-cryptsetup attach unseals it with its own code.
func TestWeEnrollSystemdUnseals(t *testing.T) {
	requireFile(t, systemdCryptsetup)
	for _, tc := range []struct {
		name string
		opts SealOptions
		pin  string
	}{
		{"pcr7", SealOptions{}, ""},
		{"pcr7+11-pin", SealOptions{PCRs: []int{7, 11}, PIN: []byte("9876")}, "9876"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := startSwtpmTCP(t)
			img, keyFile := luksImage(t)
			var s *Sealed
			withTPM(t, sw, func(tpm *Counter) {
				extend(t, tpm, 7, "secure boot on")
				var secret []byte
				var err error
				if secret, s, err = Seal(tpm, tc.opts); err != nil {
					t.Fatal(err)
				}
				addKeyslot(t, img, keyFile, []byte(base64.StdEncoding.EncodeToString(secret)))
			})
			importToken(t, img, NewToken(s, 1))
			out := attach(t, sw, img, tc.pin)
			for _, want := range []string{"Completed TPM2 key unsealing", "[keyslot 1] using passphrase"} {
				if !strings.Contains(out, want) {
					t.Fatalf("systemd-cryptsetup attach did not log %q:\n%s", want, out)
				}
			}
			withTPM(t, sw, func(tpm *Counter) { extend(t, tpm, 7, "secure boot off") })
			if out := attach(t, sw, img, tc.pin); !strings.Contains(out, "policy digest does not match") {
				t.Errorf("systemd-cryptsetup attach after PCR 7 change did not refuse with a policy mismatch:\n%s", out)
			}
		})
	}
}

func addKeyslot(t *testing.T, img, keyFile string, pass []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "new")
	if err := os.WriteFile(f, pass, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "luksAddKey", "-q", "--key-slot", "1", "--pbkdf", "pbkdf2",
		"--pbkdf-force-iterations", "1000", "--hash", "sha512", "--key-file", keyFile, img, f)
}

func importToken(t *testing.T, img string, tok *Token) {
	t.Helper()
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "token.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, "cryptsetup", "token", "import", "--json-file", f, "--key-slot", "1", img)
	dump := string(testenv.Run(t, "cryptsetup", "luksDump", img))
	if !strings.Contains(dump, "systemd-tpm2") || !strings.Contains(dump, "tpm2-primary-alg: ecc") {
		t.Fatalf("luksDump does not show the token as systemd's plugin decodes it:\n%s", dump)
	}
}

// attach runs systemd-cryptsetup attach against the swtpm and returns its
// debug log. It fails at the device-mapper step on this host, after the
// unseal; "swtpm:port=P" avoids a comma, which crypttab options split on.
func attach(t *testing.T, sw *swtpm, img, pin string) string {
	t.Helper()
	cmd := exec.Command(systemdCryptsetup, "attach", "initos-interop-"+filepath.Base(sw.Dir), img, "-",
		fmt.Sprintf("tpm2-device=swtpm:port=%d,headless=true", sw.Device.Port))
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug", "PIN="+pin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // fails without device-mapper; the log is the evidence
	return out.String()
}
