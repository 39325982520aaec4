package tpm2

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPolicyHashMatchesSystemd recomputes, without a TPM, the policy hashes
// in tokens systemd-cryptenroll 252 wrote against swtpm, proving the
// policy order, PCR selection encoding and signing-key template match.
func TestPolicyHashMatchesSystemd(t *testing.T) {
	zero := make([]byte, 32)
	one := append(make([]byte, 31), 1)
	pcr7 := sha256Sum(append(append([]byte(nil), zero...), one...)) // tpm2_pcrextend 7:sha256=00..01
	pub, err := ParsePublicKeyPEM(readTestdata(t, "systemd252-signed.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	name, err := PublicKeyName(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		spec policySpec
	}{
		{"systemd252-pcr7.token.json", policySpec{bank: SHA256, pcrs: []int{7}, values: map[int][]byte{7: pcr7}}},
		{"systemd252-signed.token.json", policySpec{bank: SHA256, pcrs: []int{7}, values: map[int][]byte{7: zero}, pubKeyName: name}},
	} {
		tok, err := ParseToken(readTestdata(t, tc.file))
		if err != nil {
			t.Fatalf("ParseToken(%s): %v", tc.file, err)
		}
		got, err := tc.spec.digest()
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tok.PolicyHash {
			t.Errorf("policy digest for %s = %x, want %s", tc.file, got, tok.PolicyHash)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	for _, file := range []string{"systemd252-pcr7.token.json", "systemd252-signed.token.json", "initos-default.token.json", "initos-srk.token.json"} {
		in := bytes.TrimSpace(readTestdata(t, file))
		tok, err := ParseToken(in)
		if err != nil {
			t.Fatalf("ParseToken(%s): %v", file, err)
		}
		s, err := tok.Sealed()
		if err != nil {
			t.Fatal(err)
		}
		out, err := NewToken(s, 1).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(in), string(out)); diff != "" {
			t.Errorf("%s: NewToken(ParseToken(x)).Marshal() differs from x (-want +got):\n%s", file, diff)
		}
	}
}

func TestParseTokenBad(t *testing.T) {
	good := string(bytes.TrimSpace(readTestdata(t, "systemd252-pcr7.token.json")))
	for _, tc := range []struct {
		name, old, new, want string
	}{
		{"not-json", good, "{", "unexpected EOF"},
		{"type", `"systemd-tpm2"`, `"systemd-fido2"`, "type"},
		{"bad-keyslot", `["1"]`, `["x"]`, "keyslot"},
		{"bank", `"sha256"`, `"md5"`, "tpm2-pcr-bank"},
		{"alg", `"ecc"`, `"dsa"`, "tpm2-primary-alg"},
		{"pcr-range", `[7]`, `[24]`, "tpm2-pcrs"},
		{"no-pcrs", `"tpm2-pcrs":[7],`, ``, "tpm2-pcrs missing"},
		{"blob-b64", `"tpm2-blob":"`, `"tpm2-blob":"!`, "not base64"},
		{"blob-short", `"tpm2-blob":"AJ4A`, `"tpm2-blob":"AP8A`, "private part: size 255"},
		{"policy-hex", `"tpm2-policy-hash":"5`, `"tpm2-policy-hash":"x`, "not hex"},
		{"policy-size", `"tpm2-policy-hash":"51a6`, `"tpm2-policy-hash":"51a6ff`, "tpm2-policy-hash"},
		{"pubkey-pcrs-alone", `"tpm2-pin":false`, `"tpm2-pin":false,"tpm2_pubkey_pcrs":[11]`, "without tpm2_pubkey"},
		{"pubkey-bad", `"tpm2-pin":false`, `"tpm2-pin":false,"tpm2_pubkey":"AAAA"`, "no PEM block"},
		{"trailing", good, good + "{}", "trailing data"},
		{"wrong-type", `"tpm2-pin":false`, `"tpm2-pin":"no"`, "cannot unmarshal"},
		{"primary-name-hex", `"tpm2-pin":false`, `"tpm2-pin":false,"initos-tpm2-primary-name":"xy"`, "initos-tpm2-primary-name is not hex"},
		{"primary-name-size", `"tpm2-pin":false`, `"tpm2-pin":false,"initos-tpm2-primary-name":"000b00"`, "is 3 bytes, want 34"},
		{"pcr-values-key", `"tpm2-pin":false`, `"tpm2-pin":false,"initos-tpm2-pcr-values":{"8":"00"}`, `key "8" is not one of the bound PCRs 7`},
		{"pcr-values-size", `"tpm2-pin":false`, `"tpm2-pin":false,"initos-tpm2-pcr-values":{"7":"00"}`, "PCR 7: value is 1 bytes"},
		{"literal-no-value", `"tpm2-pin":false`, `"tpm2-pin":false,"initos-tpm2-pcr-literal":[7]`, "PCR 7 has no value"},
		{"srk-b64", `"tpm2-pin":false`, `"tpm2-pin":false,"tpm2_srk":"!"`, "tpm2_srk is not base64"},
		{"srk-bad", `"tpm2-pin":false`, `"tpm2-pin":false,"tpm2_srk":"gAAAAQ=="`, "tpm2_srk: parse SRK: handle 0x80000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(good, tc.old, tc.new, 1)
			if in == good && tc.old != good {
				t.Fatalf("test case did not change the token")
			}
			_, err := ParseToken([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseToken(%s) = %v, want error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

func FuzzParseToken(f *testing.F) {
	for _, file := range []string{"systemd252-pcr7.token.json", "systemd252-signed.token.json", "initos-default.token.json", "initos-srk.token.json"} {
		f.Add(readTestdata(f, file))
	}
	f.Add([]byte(`{"type":"systemd-tpm2","keyslots":["0"],"tpm2-blob":"AAEAAAEA","tpm2-pcrs":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseToken(data)
		if err != nil {
			return
		}
		s, err := tok.Sealed()
		if err != nil {
			t.Fatalf("Sealed after successful ParseToken: %v", err)
		}
		out, err := NewToken(s, 0).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseToken(out); err != nil {
			t.Fatalf("ParseToken(re-encoded) = %v", err)
		}
	})
}

func FuzzSetBlob(f *testing.F) {
	for _, file := range []string{"systemd252-pcr7.token.json", "systemd252-signed.token.json"} {
		tok, err := ParseToken(readTestdata(f, file))
		if err != nil {
			f.Fatal(err)
		}
		s, _ := tok.Sealed()
		f.Add(s.Blob())
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		var s Sealed
		if err := s.SetBlob(blob); err != nil {
			return
		}
		if got := s.Blob(); !bytes.Equal(got, blob) {
			t.Fatalf("Blob() after SetBlob = %x, want %x", got, blob)
		}
	})
}
