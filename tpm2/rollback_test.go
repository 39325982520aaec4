package tpm2

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// TestRollbackIndex: the index is defined once, reads 0, is raised but
// never lowered, and its Name as the TPM computes it equals RollbackName.
func TestRollbackIndex(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	st, err := ReadMinVersion(tpm, 0)
	if err != nil || st.Defined || st.Min != 0 {
		t.Fatalf("ReadMinVersion(no index) = %+v, %v, want not defined, 0", st, err)
	}
	if err := DefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Fatalf("DefineRollbackIndex: %v", err)
	}
	if err := DefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Fatalf("DefineRollbackIndex again = %v, want nil (idempotent)", err)
	}
	rsp, err := tpm2.NVReadPublic{NVIndex: RollbackIndex}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := RollbackName(0); !bytes.Equal(rsp.NVName.Buffer, want) {
		t.Errorf("TPM's index name = %x, want RollbackName %x", rsp.NVName.Buffer, want)
	}
	for _, c := range []struct{ raise, before, after uint64 }{
		{3, 0, 3}, {2, 3, 3}, {3, 3, 3}, {7, 3, 7}, {0, 7, 7},
	} {
		b, a, err := RaiseMinVersion(tpm, 0, c.raise, nil)
		if err != nil || b != c.before || a != c.after {
			t.Errorf("RaiseMinVersion(%d) = %d, %d, %v, want %d, %d", c.raise, b, a, err, c.before, c.after)
		}
	}
	if st, err := ReadMinVersion(tpm, 0); err != nil || !st.Defined || st.Min != 7 {
		t.Errorf("ReadMinVersion = %+v, %v, want defined, 7", st, err)
	}
}

// TestRollbackIndexForeign: an index at the handle with other attributes
// (here: writable with its own auth value, so anyone could lower it) is
// refused, not trusted.
func TestRollbackIndexForeign(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	pub := RollbackPublic(0)
	pub.Attributes.Written, pub.Attributes.AuthWrite = false, true
	if _, err := (tpm2.NVDefineSpace{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		PublicInfo: tpm2.New2B(pub)}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	_, err := ReadMinVersion(tpm, 0)
	if !errors.Is(err, ErrRollbackIndex) || !strings.Contains(err.Error(), "never been written") {
		t.Errorf("ReadMinVersion(foreign index) = %v, want ErrRollbackIndex naming the difference", err)
	}
	if _, _, err := RaiseMinVersion(tpm, 0, 5, nil); !errors.Is(err, ErrRollbackIndex) {
		t.Errorf("RaiseMinVersion(foreign index) = %v, want ErrRollbackIndex", err)
	}
	if err := UndefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := DefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Errorf("DefineRollbackIndex after undefine: %v", err)
	}
}

// TestExtendRollback: our PolicyNV digest equals go-tpm's calculator and
// the digest a real policy session reaches.
func TestExtendRollback(t *testing.T) {
	tpm := startSwtpm(t).Open(t)
	if err := DefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Fatal(err)
	}
	r := Rollback{Version: 9}
	got, err := ExtendRollback(make([]byte, 32), r)
	if err != nil {
		t.Fatal(err)
	}
	calc, _ := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	name, _ := RollbackName(0)
	nh := tpm2.NamedHandle{Handle: RollbackIndex, Name: tpm2.TPM2BName{Buffer: name}}
	if err := (tpm2.PolicyNV{NVIndex: nh, OperandB: tpm2.TPM2BOperand{Buffer: r.operand()}, Operation: tpm2.TPMEOUnsignedLE}).Update(calc); err != nil {
		t.Fatal(err)
	}
	if want := calc.Hash().Digest; !bytes.Equal(got, want) {
		t.Errorf("ExtendRollback = %x, go-tpm's calculator %x", got, want)
	}
	sess, closeSess, err := tpm2PolicySession(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()
	if err := policyRollback(tpm, sess.Handle(), r); err != nil {
		t.Fatalf("policyRollback(9 >= 0): %v", err)
	}
	d, err := tpm2.PolicyGetDigest{PolicySession: sess.Handle()}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.PolicyDigest.Buffer, got) {
		t.Errorf("session digest after PolicyNV = %x, ExtendRollback %x", d.PolicyDigest.Buffer, got)
	}
}

// TestRollbackPolicy: a key sealed to a signed PCR 11 policy unseals with
// a signature that carries security version 2 while the NV minimum is at
// most 2; once the minimum is raised to 3 the TPM itself refuses that
// signature (not our code: the PolicyNV assertion fails), and a signature
// for version 3 of the same PCR 11 value still unseals.
func TestRollbackPolicy(t *testing.T) {
	k := testKeys(t)
	tpm := startSwtpm(t).Open(t)
	if err := DefineRollbackIndex(tpm, 0, nil); err != nil {
		t.Fatal(err)
	}
	extend(t, tpm, 11, "uki")
	secret, s, err := Seal(tpm, SealOptions{PCRs: []int{7}, PublicKey: &k[0].PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	sig := func(v uint64) []byte {
		e, err := SignPCRPolicyEntryRollback(k[0], SHA256, []int{11}, pcr11(t, tpm), Rollback{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(PCRSignature{"sha256": {e}})
		return b
	}
	v2, v3 := sig(2), sig(3)
	if got, err := Unseal(tpm, s, UnsealOptions{Signature: v2}); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal(version 2, minimum 0) = %x, %v, want the secret", got, err)
	}
	if _, _, err := RaiseMinVersion(tpm, 0, 3, nil); err != nil {
		t.Fatal(err)
	}
	_, err = Unseal(tpm, s, UnsealOptions{Signature: v2})
	if !errors.Is(err, ErrRolledBack) || !errors.Is(err, ErrPolicyMismatch) || !strings.Contains(err.Error(), "security version 2") || !strings.Contains(err.Error(), "minimum 3") {
		t.Errorf("Unseal(version 2, minimum 3) = %v, want ErrRolledBack naming version 2 and minimum 3", err)
	}
	if got, err := Unseal(tpm, s, UnsealOptions{Signature: v3}); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Unseal(version 3, minimum 3) = %x, %v, want the secret", got, err)
	}
	// A forged entry claiming version 3 over the version 2 digest: the
	// digest no longer matches, so no signature is found.
	var forged PCRSignature
	json.Unmarshal(v2, &forged)
	three := uint64(3)
	forged["sha256"][0].SecurityVersion = &three
	b, _ := json.Marshal(forged)
	if _, err := Unseal(tpm, s, UnsealOptions{Signature: b}); !errors.Is(err, ErrNoSignature) {
		t.Errorf("Unseal(version field changed after signing) = %v, want ErrNoSignature", err)
	}
}

// TestRollbackPolicyNoIndex: a versioned signature on a TPM without the
// index says so.
func TestRollbackPolicyNoIndex(t *testing.T) {
	k := testKeys(t)
	tpm := startSwtpm(t).Open(t)
	_, s, err := Seal(tpm, SealOptions{PublicKey: &k[0].PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	e, err := SignPCRPolicyEntryRollback(k[0], SHA256, []int{11}, pcr11(t, tpm), Rollback{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(PCRSignature{"sha256": {e}})
	if _, err := Unseal(tpm, s, UnsealOptions{Signature: b}); !errors.Is(err, ErrPolicyMismatch) || !strings.Contains(err.Error(), "has none") {
		t.Errorf("Unseal(no index) = %v, want ErrPolicyMismatch saying the TPM has no index", err)
	}
}

func TestParseRollbackEntryBad(t *testing.T) {
	k := testKeys(t)
	e, err := SignPCRPolicyEntryRollback(k[0], SHA256, []int{11}, map[int][]byte{11: make([]byte, 32)}, Rollback{Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(e *PCRSignatureEntry)
		want string
	}{
		{"index alone", func(e *PCRSignatureEntry) { e.SecurityVersion = nil }, "go together"},
		{"version alone", func(e *PCRSignatureEntry) { e.RollbackIndex = "" }, "go together"},
		{"not NV", func(e *PCRSignatureEntry) { e.RollbackIndex = "0x81000001" }, "not an NV index"},
		{"garbage", func(e *PCRSignatureEntry) { e.RollbackIndex = "zz" }, "not an NV index"},
	} {
		e2 := e
		c.edit(&e2)
		b, _ := json.Marshal(PCRSignature{"sha256": {e2}})
		if _, err := ParsePCRSignature(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePCRSignature(%s) = %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
