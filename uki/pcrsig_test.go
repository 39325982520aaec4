package uki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-tpm/tpm2/transport"

	"initos/internal/testenv"
	"initos/pecoff"
	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

const (
	testStub    = "../pecoff/testdata/linuxx64.efi.stub"
	measurePath = "/usr/lib/systemd/systemd-measure"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
)

// testKeys returns two RSA 2048 keys, generated once per process.
func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys[i] = k
		}
	})
	return keys[0], keys[1]
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testUKI returns small but real payloads: random kernel and initrd bytes
// (the stub is never run on the host).
func testUKI(t testing.TB, cmdline string) pecoff.UKI {
	t.Helper()
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	return pecoff.UKI{
		OSRelease: []byte("ID=initos\nVERSION_ID=1\n"), Cmdline: []byte(cmdline),
		Linux: rnd(70001), Initrd: rnd(33333),
	}
}

func build(t testing.TB, u pecoff.UKI, s *PCRSigning) *pecoff.Image {
	t.Helper()
	img, err := Build(readFile(t, testStub), u, s)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return img
}

// TestBuildSigned checks the .pcrsig of a built UKI against its own
// contents: one sha256 entry for PCR 11 whose pol is the PolicyPCR digest
// of the predicted value, whose pkfp is the key's, whose signature
// verifies with the .pcrpkey public key.
func TestBuildSigned(t *testing.T) {
	key, _ := testKeys(t)
	img := build(t, testUKI(t, "quiet"), &PCRSigning{Key: key})
	pub, err := tpm2.ParsePublicKeyPEM(img.Section(".pcrpkey"))
	if err != nil || !pub.Equal(&key.PublicKey) {
		t.Fatalf(".pcrpkey = %q (%v), want the key's public key", img.Section(".pcrpkey"), err)
	}
	sig, err := tpm2.ParsePCRSignature(img.Section(".pcrsig"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tpm2.PredictPCR11(bytes.NewReader(img.Bytes()), "enter-initrd") // the default: InitrdPhases
	if err != nil {
		t.Fatal(err)
	}
	pol, err := tpm2.PolicyPCRDigest(tpm2.SHA256, []int{11}, map[int][]byte{11: v})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := tpm2.Fingerprint(&key.PublicKey)
	if len(sig) != 1 || len(sig["sha256"]) != 1 {
		t.Fatalf(".pcrsig = %s, want one sha256 entry", img.Section(".pcrsig"))
	}
	e := sig["sha256"][0]
	want := tpm2.PCRSignatureEntry{PCRs: []int{11}, PKFP: hex.EncodeToString(fp), Pol: hex.EncodeToString(pol), Sig: e.Sig}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf(".pcrsig entry diff (-want +got):\n%s", diff)
	}
	checkSig(t, pub, e)
}

func checkSig(t *testing.T, pub *rsa.PublicKey, e tpm2.PCRSignatureEntry) {
	t.Helper()
	pol, _ := hex.DecodeString(e.Pol)
	sig, _ := base64.StdEncoding.DecodeString(e.Sig)
	d := sha256.Sum256(pol)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
		t.Errorf("signature over pol %s does not verify with the .pcrpkey key: %v", e.Pol, err)
	}
}

// TestBuildMatchesSystemdMeasure: for the same sections, our .pcrsig is
// byte for byte what `systemd-measure sign` (systemd 252) prints, for the
// value at boot (--phase=) and for its default phase paths. systemd-measure
// 252 computes the policy in a TPM trial session, hence the swtpm.
func TestBuildMatchesSystemdMeasure(t *testing.T) {
	if _, err := os.Stat(measurePath); err != nil {
		testenv.Missing(t, "%s missing", measurePath)
	}
	key, _ := testKeys(t)
	dir := t.TempDir()
	u := testUKI(t, "console=ttyS0 root=/dev/vda")
	u.PCRPKey, _ = tpm2.EncodePublicKeyPEM(&key.PublicKey)
	files := map[string][]byte{"linux": u.Linux, "osrel": u.OSRelease, "cmdline": u.Cmdline, "initrd": u.Initrd,
		"pcrpkey": u.PCRPKey, "private-key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})}
	args := []string{"sign", "--bank=sha256", "--public-key=" + filepath.Join(dir, "pcrpkey")}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--"+name+"="+p)
	}
	tpm := swtpmtest.StartTCP(t)
	args = append(args, "--tpm2-device="+tpm.Device())
	for _, tc := range []struct {
		name   string
		phases [][]string
		flags  []string
	}{
		{"boot", [][]string{{}}, []string{"--phase="}},
		{"initrd (default)", nil, []string{"--phase=enter-initrd"}},
		{"systemd-phases", SystemdPhases, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(measurePath, append(args, tc.flags...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			want, err := cmd.Output()
			if err != nil {
				t.Fatalf("systemd-measure %q: %v\n%s", cmd.Args, err, stderr.Bytes())
			}
			img := build(t, u, &PCRSigning{Key: key, Phases: tc.phases})
			got := img.Section(".pcrsig")
			if !bytes.Equal(got, bytes.TrimSpace(want)) {
				t.Errorf(".pcrsig = %s\nwant (systemd-measure sign %s) %s", got, strings.Join(tc.flags, " "), want)
			}
			sig, err := tpm2.ParsePCRSignature(got)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig["sha256"]) != max(1, len(tc.phases)) {
				t.Errorf(".pcrsig has %d entries, want %d", len(sig["sha256"]), max(1, len(tc.phases)))
			}
			for _, e := range sig["sha256"] {
				checkSig(t, &key.PublicKey, e)
			}
		})
	}
}

// TestBuildUnsealsOnSwtpm: a secret sealed with the PCR public key unseals
// with a UKI's .pcrsig once PCR 11 holds what systemd-stub measures for it
// (replayed into a swtpm), and not with the .pcrsig of a UKI signed by
// another key, nor of another UKI signed by the same key (the TPM holds
// v1's value). The VM test boots the real upgrade.
func TestBuildUnsealsOnSwtpm(t *testing.T) {
	key, other := testKeys(t)
	sw := swtpmtest.Start(t)
	dev, err := tpm2.ParseDevice(sw.Device())
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := tpm2.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	secret, sealed, err := tpm2.Seal(tpm, tpm2.SealOptions{PCRs: []int{}, PublicKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	v1 := build(t, testUKI(t, "v1"), &PCRSigning{Key: key})
	ms, err := tpm2.MeasureUKI(bytes.NewReader(v1.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := tpm2.ExtendPCR(tpm, tpm2.SHA256, 11, m.Digest); err != nil {
			t.Fatal(err)
		}
	}
	// The default signs the initrd phase only: not before it, not after.
	sig := v1.Section(".pcrsig")
	if _, err := tpm2.Unseal(tpm, sealed, tpm2.UnsealOptions{Signature: sig}); !errors.Is(err, tpm2.ErrNoSignature) {
		t.Errorf("Unseal(v1 .pcrsig) before enter-initrd = %v, want ErrNoSignature", err)
	}
	extendPhase(t, tpm, "enter-initrd")
	got, err := tpm2.Unseal(tpm, sealed, tpm2.UnsealOptions{Signature: sig})
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal(v1 .pcrsig) in the initrd = %x, %v, want the secret", got, err)
	}
	defer func() {
		extendPhase(t, tpm, "leave-initrd")
		if _, err := tpm2.Unseal(tpm, sealed, tpm2.UnsealOptions{Signature: sig}); !errors.Is(err, tpm2.ErrNoSignature) {
			t.Errorf("Unseal(v1 .pcrsig) after leave-initrd = %v, want ErrNoSignature", err)
		}
	}()
	for name, img := range map[string]*pecoff.Image{
		"other key": build(t, testUKI(t, "v1"), &PCRSigning{Key: other}),
		"other UKI": build(t, testUKI(t, "v2"), &PCRSigning{Key: key}),
	} {
		if _, err := tpm2.Unseal(tpm, sealed, tpm2.UnsealOptions{Signature: img.Section(".pcrsig")}); !errors.Is(err, tpm2.ErrNoSignature) {
			t.Errorf("Unseal(.pcrsig of %s) = %v, want ErrNoSignature", name, err)
		}
	}
}

// extendPhase measures a boot phase as systemd-pcrphase does.
func extendPhase(t *testing.T, tpm transport.TPM, phase string) {
	t.Helper()
	d := sha256.Sum256([]byte(phase))
	if err := tpm2.ExtendPCR(tpm, tpm2.SHA256, 11, d[:]); err != nil {
		t.Fatal(err)
	}
}

func TestBuildErrors(t *testing.T) {
	key, other := testKeys(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, _ := tpm2.EncodePublicKeyPEM(&other.PublicKey)
	keyPEM, _ := tpm2.EncodePublicKeyPEM(&key.PublicKey)
	withSig := testUKI(t, "x")
	withSig.PCRSig = []byte(`{}`)
	withKey := testUKI(t, "x")
	withKey.PCRPKey = otherPEM
	for _, tc := range []struct {
		name string
		u    pecoff.UKI
		s    PCRSigning
		want string
	}{
		{"no key", testUKI(t, "x"), PCRSigning{}, "no PCR private key"},
		{"ecdsa", testUKI(t, "x"), PCRSigning{Key: ec}, "want RSA"},
		{"public key mismatch", testUKI(t, "x"), PCRSigning{Key: key, PublicKey: otherPEM}, "does not match"},
		{"bad public key", testUKI(t, "x"), PCRSigning{Key: key, PublicKey: []byte("junk")}, "no PEM block"},
		{"pcrsig given", withSig, PCRSigning{Key: key}, ".pcrsig is given"},
		{"pcrpkey differs", withKey, PCRSigning{Key: key, PublicKey: keyPEM}, "differs"},
		{"pcrpkey of other key", withKey, PCRSigning{Key: key}, "does not match"},
		{"sha1", testUKI(t, "x"), PCRSigning{Key: key, Banks: []tpm2.Bank{tpm2.SHA1}}, "sha1 unsupported"},
		{"no bank", testUKI(t, "x"), PCRSigning{Key: key, Banks: []tpm2.Bank{}}, "no PCR bank"},
		{"no kernel", pecoff.UKI{}, PCRSigning{Key: key}, "no kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(readFile(t, testStub), tc.u, &tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build(%s) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

// TestBuildTwice: same inputs, same bytes (PKCS#1 v1.5 is deterministic).
func TestBuildTwice(t *testing.T) {
	key, _ := testKeys(t)
	u := testUKI(t, "quiet")
	s := &PCRSigning{Key: key, Phases: SystemdPhases}
	if a, b := build(t, u, s).Bytes(), build(t, u, s).Bytes(); !bytes.Equal(a, b) {
		t.Error("two builds of the same signed UKI differ")
	}
}

func TestBuildUnsigned(t *testing.T) {
	u := testUKI(t, "quiet")
	want, err := pecoff.BuildUKI(readFile(t, testStub), u)
	if err != nil {
		t.Fatal(err)
	}
	if got := build(t, u, nil); !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Error("Build(nil signing) differs from pecoff.BuildUKI")
	}
}

func TestParsePhases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want [][]string
		err  bool
	}{
		{":", [][]string{{}}, false},
		{"enter-initrd", [][]string{{"enter-initrd"}}, false},
		{": enter-initrd,enter-initrd:leave-initrd", [][]string{{}, {"enter-initrd"}, {"enter-initrd", "leave-initrd"}}, false},
		{"", nil, true},
		{" , ", nil, true},
		{"enter-initrd::ready", nil, true},
		{"a:", nil, true},
	} {
		got, err := ParsePhases(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParsePhases(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.err && diff != "" {
			t.Errorf("ParsePhases(%q) diff (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzParsePhases(f *testing.F) {
	f.Add(":,enter-initrd,enter-initrd:leave-initrd")
	f.Add("a::b")
	f.Fuzz(func(t *testing.T, s string) {
		paths, err := ParsePhases(s)
		if err != nil {
			return
		}
		words := make([]string, len(paths))
		for i, p := range paths {
			words[i] = strings.Join(p, ":")
			if words[i] == "" {
				words[i] = ":"
			}
		}
		again, err := ParsePhases(strings.Join(words, ","))
		if err != nil || !cmp.Equal(again, paths) {
			t.Errorf("ParsePhases(%q) = %q, re-parsed %q, %v", s, paths, again, err)
		}
	})
}
