package tpm2

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

var (
	keyOnce sync.Once
	keys    [2]*rsa.PrivateKey
)

// testKeys returns two RSA-2048 keys, generated once per test binary.
func testKeys(t testing.TB) [2]*rsa.PrivateKey {
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
	return keys
}

func pcr11(t *testing.T, tpm interface{ Send([]byte) ([]byte, error) }) map[int][]byte {
	t.Helper()
	v, err := ReadPCRs(tpm, SHA256, []int{11})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSignedPolicy: a key sealed to "PCR 11 as signed by K" unseals after
// PCR 11 changes to a value K signed, and not for a value K did not sign
// or that another key signed.
func TestSignedPolicy(t *testing.T) {
	k := testKeys(t)
	for _, pcrs := range [][]int{{}, {7}} {
		t.Run("pcrs="+FormatPCRs(pcrs), func(t *testing.T) {
			tpm := startSwtpm(t).Open(t)
			extend(t, tpm, 11, "uki v1")
			secret, s, err := Seal(tpm, SealOptions{PCRs: pcrs, PublicKey: &k[0].PublicKey})
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			extend(t, tpm, 11, "uki v2") // the upgrade: no reseal
			sigV2, err := SignPCRPolicy(k[0], SHA256, []int{11}, pcr11(t, tpm))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unseal(tpm, s, UnsealOptions{Signature: sigV2})
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("Unseal(signed new value) = %x, %v, want %x", got, err, secret)
			}
			otherKey, err := SignPCRPolicy(k[1], SHA256, []int{11}, pcr11(t, tpm))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Unseal(tpm, s, UnsealOptions{Signature: otherKey}); !errors.Is(err, ErrNoSignature) {
				t.Errorf("Unseal(signed by another key) = %v, want ErrNoSignature", err)
			}
			extend(t, tpm, 11, "unsigned uki")
			_, err = Unseal(tpm, s, UnsealOptions{Signature: sigV2})
			if !errors.Is(err, ErrPolicyMismatch) || !errors.Is(err, ErrNoSignature) {
				t.Errorf("Unseal(unsigned value) = %v, want ErrPolicyMismatch+ErrNoSignature", err)
			}
			if _, err := Unseal(tpm, s, UnsealOptions{Signature: forge(t, k[0], pcr11(t, tpm))}); !errors.Is(err, ErrPolicyMismatch) {
				t.Errorf("Unseal(forged signature) = %v, want ErrPolicyMismatch", err)
			}
		})
	}
}

// forge builds an entry for the right key and policy with a bogus signature.
func forge(t *testing.T, k *rsa.PrivateKey, values map[int][]byte) []byte {
	t.Helper()
	e, err := SignPCRPolicyEntry(k, SHA256, []int{11}, values)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(e.Sig)
	sig[10] ^= 1
	e.Sig = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(PCRSignature{"sha256": {e}})
	return b
}

func TestSignPCRPolicyRejectsECDSA(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignPCRPolicy(k, SHA256, []int{11}, map[int][]byte{11: make([]byte, 32)}); err == nil {
		t.Error("SignPCRPolicy(ECDSA key) = nil error, want RSA-only error")
	}
}

func TestParsePCRSignatureBad(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`{"sha256":[{"pcrs":[99],"pkfp":"","pol":"","sig":""}]}`,
		`{"sha256":[{"pcrs":[11],"pkfp":"zz","pol":"","sig":""}]}`,
		`{"sha256":[{"pcrs":[11],"pkfp":"` + hex32 + `","pol":"00","sig":""}]}`,
		`{"sha256":[{"pcrs":[11],"pkfp":"` + hex32 + `","pol":"` + hex32 + `","sig":"!"}]}`,
	} {
		if _, err := ParsePCRSignature([]byte(in)); err == nil {
			t.Errorf("ParsePCRSignature(%s) = nil error", in)
		}
	}
}

const hex32 = "0000000000000000000000000000000000000000000000000000000000000000"

func FuzzParsePCRSignature(f *testing.F) {
	f.Add([]byte(`{"sha256":[{"pcrs":[11],"pkfp":"` + hex32 + `","pol":"` + hex32 + `","sig":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePCRSignature(data)
		if err != nil {
			return
		}
		_, _ = s.find(SHA256, []int{11}, make([]byte, 32), make([]byte, 32))
	})
}

func TestParsePublicKeyPEMBad(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  any
		want string
	}{
		{"rsa-1024", &small.PublicKey, "1024 bits, want 2048..4096"},
		{"ecdsa", &ec.PublicKey, "want RSA"},
	} {
		b, err := EncodePublicKeyPEM(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParsePublicKeyPEM(b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePublicKeyPEM(%s) = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParsePublicKeyPEM([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")); err == nil {
		t.Error("ParsePublicKeyPEM(garbage DER) = nil error")
	}
}
