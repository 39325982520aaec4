package tpm2

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// setDAParameters sends TPM2_DictionaryAttackParameters (Part 3, 25.3)
// with the empty lockout password; go-tpm v0.9.8 has no wrapper for it.
func setDAParameters(t *testing.T, tpm interface{ Send([]byte) ([]byte, error) }, maxTries, recovery, lockoutRecovery uint32) {
	t.Helper()
	cmd := binary.BigEndian.AppendUint16(nil, 0x8002)    // TPM_ST_SESSIONS
	cmd = binary.BigEndian.AppendUint32(cmd, 0)          // size, set below
	cmd = binary.BigEndian.AppendUint32(cmd, 0x0000013A) // TPM_CC_DictionaryAttackParameters
	cmd = binary.BigEndian.AppendUint32(cmd, 0x4000000A) // TPM_RH_LOCKOUT
	cmd = binary.BigEndian.AppendUint32(cmd, 9)          // auth area size
	cmd = binary.BigEndian.AppendUint32(cmd, 0x40000009) // TPM_RS_PW
	cmd = append(cmd, 0, 0, 0, 0, 0)                     // nonce, attributes, hmac
	for _, v := range []uint32{maxTries, recovery, lockoutRecovery} {
		cmd = binary.BigEndian.AppendUint32(cmd, v)
	}
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	rsp, err := tpm.Send(cmd)
	if err != nil || len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:]) != 0 {
		t.Fatalf("DictionaryAttackParameters: %x, %v", rsp, err)
	}
}

func TestUnsealLockout(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	setDAParameters(t, tpm, 1, 1000, 1000)
	_, s, err := Seal(tpm, SealOptions{PIN: []byte("right")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unseal(tpm, s, UnsealOptions{PIN: []byte("wrong")}); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("Unseal(wrong PIN) = %v, want ErrWrongPIN", err)
	}
	_, err = Unseal(tpm, s, UnsealOptions{PIN: []byte("right")})
	if !errors.Is(err, ErrLockout) || !strings.Contains(err.Error(), "TPM_RC_LOCKOUT") {
		t.Fatalf("Unseal in lockout = %v, want ErrLockout naming TPM_RC_LOCKOUT", err)
	}
	t.Logf("error: %v", err)
}

func TestOpenAbsent(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []Device{
		{Path: filepath.Join(dir, "tpmrm0")},
		{Socket: filepath.Join(dir, "swtpm.sock")},
		{Host: "127.0.0.1", Port: freePortPair(t)},
	} {
		if _, err := Open(d); !errors.Is(err, ErrNoTPM) {
			t.Errorf("Open(%v) = %v, want ErrNoTPM", d, err)
		}
	}
}

func TestSealErrors(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	for _, tc := range []struct {
		name string
		opts SealOptions
		want string
	}{
		{"pcr-range", SealOptions{PCRs: []int{24}}, "out of range"},
		{"bank", SealOptions{Bank: 0x12}, "unsupported"},
		{"big-secret", SealOptions{Secret: make([]byte, 129)}, "want 1..128"},
		{"empty-secret", SealOptions{Secret: []byte{}}, "want 1..128"},
		{"signed-no-pcrs", SealOptions{PublicKey: &testKeys(t)[0].PublicKey, PublicKeyPCRs: []int{}}, "PublicKeyPCRs is empty"},
	} {
		if _, _, err := Seal(tpm, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Seal(%s) = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestUnsealErrors(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	_, s, err := Seal(tpm, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := startSwtpm(t).Open(t)
	if _, err := Unseal(other, s, UnsealOptions{}); !errors.Is(err, ErrPrimaryMismatch) {
		t.Errorf("Unseal on another TPM = %v, want ErrPrimaryMismatch", err)
	}
	unpinned := *s
	unpinned.PrimaryName = nil // as in tokens systemd writes
	if _, err := Unseal(other, &unpinned, UnsealOptions{}); err == nil || !strings.Contains(err.Error(), "load sealed object") {
		t.Errorf("Unseal of an unpinned object on another TPM = %v, want load error", err)
	}
	if _, err := Unseal(tpm, &Sealed{}, UnsealOptions{}); err == nil {
		t.Error("Unseal(empty Sealed) = nil error")
	}
	pinned := *s
	pinned.PIN = true
	if _, err := Unseal(tpm, &pinned, UnsealOptions{}); !errors.Is(err, ErrWrongPIN) {
		t.Errorf("Unseal(PIN object, no PIN) = %v, want ErrWrongPIN", err)
	}
}

func TestFlushAll(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	// Leak what a crashed client leaves: a primary and a policy session.
	if _, err := createPrimary(tpm, PrimaryECC); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := tpm2PolicySession(tpm); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := tpm2PolicySession(tpm); err == nil {
		t.Log("TPM had room for a 4th session")
	}
	if err := FlushAll(tpm); err != nil {
		t.Fatalf("FlushAll: %v", err)
	}
	secret, s, err := Seal(tpm, SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Unseal(tpm, s, UnsealOptions{}); err != nil || string(got) != string(secret) {
		t.Fatalf("Unseal after FlushAll = %v", err)
	}
}
