package tpm2

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestSealUnsealRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts SealOptions
	}{
		{"default", SealOptions{}},
		{"pcr7+11", SealOptions{PCRs: []int{7, 11}}},
		{"no-pcrs", SealOptions{PCRs: []int{}}},
		{"nine-pcrs", SealOptions{PCRs: []int{0, 1, 2, 3, 4, 5, 6, 7, 8}}},
		{"rsa-primary", SealOptions{PrimaryAlg: PrimaryRSA}},
		{"given-secret", SealOptions{Secret: []byte("hello")}},
		{"pin", SealOptions{PIN: []byte("1234")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tpm := startSwtpm(t).Open(t)
			extend(t, tpm, 7, "secure boot state")
			secret, s, err := Seal(tpm, tc.opts)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			got, err := Unseal(tpm, s, UnsealOptions{PIN: tc.opts.PIN})
			if err != nil {
				t.Fatalf("Unseal: %v", err)
			}
			if !bytes.Equal(got, secret) {
				t.Errorf("Unseal = %x, want %x", got, secret)
			}
		})
	}
}

func extend(t *testing.T, tpm interface{ Send([]byte) ([]byte, error) }, pcr int, event string) {
	t.Helper()
	d := sha256.Sum256([]byte(event))
	if err := ExtendPCR(tpm, SHA256, pcr, d[:]); err != nil {
		t.Fatal(err)
	}
}

func TestUnsealAfterExtendFails(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	_, s, err := Seal(tpm, SealOptions{PCRs: []int{7, 11}})
	if err != nil {
		t.Fatal(err)
	}
	extend(t, tpm, 11, "next stage")
	_, err = Unseal(tpm, s, UnsealOptions{})
	if !errors.Is(err, ErrPolicyMismatch) {
		t.Fatalf("Unseal after extending PCR 11 = %v, want ErrPolicyMismatch", err)
	}
	t.Logf("error: %v", err)
}

func TestUnsealPIN(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	secret, s, err := Seal(tpm, SealOptions{PIN: []byte("right")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unseal(tpm, s, UnsealOptions{PIN: []byte("wrong")}); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("Unseal(wrong PIN) = %v, want ErrWrongPIN", err)
	}
	if _, err := Unseal(tpm, s, UnsealOptions{}); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("Unseal(no PIN) = %v, want ErrWrongPIN", err)
	}
	got, err := Unseal(tpm, s, UnsealOptions{PIN: []byte("right")})
	if err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Unseal(right PIN) = %x, %v, want %x", got, err, secret)
	}
}

func TestLock(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	secret, s, err := Seal(tpm, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unseal(tpm, s, UnsealOptions{}); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal before Lock = %x, %v", got, err)
	}
	if err := Lock(tpm, SHA256, s.PCRs); err != nil {
		t.Fatal(err)
	}
	if _, err := Unseal(tpm, s, UnsealOptions{}); !errors.Is(err, ErrPolicyMismatch) {
		t.Errorf("Unseal after Lock = %v, want ErrPolicyMismatch", err)
	}
}
