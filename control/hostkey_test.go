package control

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"initos/tpm2"
	"initos/tpm2/swtpmtest"
)

// openTPM connects to an swtpm.
func openTPM(t *testing.T, sw *swtpmtest.Swtpm) interface {
	Send([]byte) ([]byte, error)
	Close() error
} {
	t.Helper()
	d, err := tpm2.ParseDevice(sw.Device())
	if err != nil {
		t.Fatal(err)
	}
	tpm, err := tpm2.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	return tpm
}

// hostKeyOf derives the host key of a TPM state and returns its SSH form.
func hostKeyOf(t *testing.T, sw *swtpmtest.Swtpm) ssh.PublicKey {
	t.Helper()
	tpm := openTPM(t, sw)
	defer tpm.Close()
	pub, err := HostPublicKey(tpm)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestTPMHostKey (swtpm serves one client at a time: each open is closed
// before the next): the same TPM derives the same key on every open; another
// TPM (another state) derives another key; signatures verify.
func TestTPMHostKey(t *testing.T) {
	a, b := swtpmtest.Start(t), swtpmtest.Start(t)
	k1, k2, k3 := hostKeyOf(t, a), hostKeyOf(t, a), hostKeyOf(t, b)
	if got, want := ssh.FingerprintSHA256(k2), ssh.FingerprintSHA256(k1); got != want {
		t.Errorf("host key of the same TPM, second open = %s, want %s", got, want)
	}
	if ssh.FingerprintSHA256(k3) == ssh.FingerprintSHA256(k1) {
		t.Errorf("two TPMs derived the same host key %s", ssh.FingerprintSHA256(k1))
	}
	if k1.Type() != ssh.KeyAlgoECDSA256 {
		t.Errorf("host key type = %s, want %s", k1.Type(), ssh.KeyAlgoECDSA256)
	}

	tpm := openTPM(t, a)
	defer tpm.Close()
	k, err := TPMHostKey(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	digest := sha256.Sum256([]byte("handshake"))
	sig, err := k.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("TPM signature does not verify")
	}
	if _, err := k.Sign(nil, digest[:20], crypto.SHA1); err == nil || !strings.Contains(err.Error(), "want a SHA-256 digest") {
		t.Errorf("Sign(SHA-1) error = %v, want a SHA-256 digest error", err)
	}
}

// TestTPMHostKeyOpenSSH: OpenSSH's client, with the TPM key pinned in
// known_hosts, logs in to a server whose host key signs in the swtpm.
func TestTPMHostKeyOpenSSH(t *testing.T) {
	sw := swtpmtest.Start(t)
	tpm := openTPM(t, sw)
	defer tpm.Close()
	signer, k, err := HostKeySigner(tpm)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	id, line := writeKey(t, t.TempDir(), "owner", "")
	_, addr := startServer(t, Config{HostKey: signer, AuthorizedKeys: []string{line}}, newFakeBackend())
	pub, err := k.SSHPublicKey() // swtpm serves one connection at a time
	if err != nil {
		t.Fatal(err)
	}
	o := newOpenSSH(t, addr, pub)
	out, errs, code := o.run(t, "", []string{id}, "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256", o.host, "status")
	if code != 0 || !strings.Contains(out, "stage:") {
		t.Errorf("ssh against the TPM host key: exit %d %q, stderr %q", code, out, errs)
	}
}
