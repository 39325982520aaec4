package control

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/internal/testenv"
)

// newCert signs key's public key as a user certificate with ca.
func newCert(t *testing.T, ca, key ssh.Signer, principals []string, valid time.Duration, crit, ext map[string]string) ssh.Signer {
	t.Helper()
	now := time.Now()
	c := &ssh.Certificate{
		Key: key.PublicKey(), Serial: 7, CertType: ssh.UserCert, KeyId: "owner@laptop",
		ValidPrincipals: principals,
		ValidAfter:      uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(valid).Unix()),
		Permissions: ssh.Permissions{CriticalOptions: crit, Extensions: ext},
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(c, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCertificates(t *testing.T) {
	ca, opsCA, rogue, user := newTestKey(t), newTestKey(t), newTestKey(t), newTestKey(t)
	b := newFakeBackend()
	_, addr := startServer(t, Config{
		UserCAKeys:     []string{ca.line},
		AuthorizedKeys: []string{`cert-authority,principals="ops,admin",verbs="status,pcrs" ` + opsCA.line},
		PerSource:      Rate{Burst: 100, Every: time.Millisecond},
	}, b)
	tests := []struct {
		name string
		key  ssh.Signer
		cmd  string
		code int // -1: login refused
		out  string
	}{
		{"valid", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, nil, nil), "status", 0, "stage:"},
		{"wrong principal", newCert(t, ca.signer, user.signer, []string{"alice"}, time.Hour, nil, nil), "status", -1, ""},
		{"expired", newCert(t, ca.signer, user.signer, []string{"root"}, -30*time.Second, nil, nil), "status", -1, ""},
		{"untrusted CA", newCert(t, rogue.signer, user.signer, []string{"root"}, time.Hour, nil, nil), "status", -1, ""},
		{"the CA key itself", ca.signer, "status", -1, ""},
		{"verbs extension", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, nil, map[string]string{extVerbs: "status"}), "reboot", ExitDenied, ""},
		{"bad verbs extension", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, nil, map[string]string{extVerbs: "shell"}), "status", -1, ""},
		{"force-command", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, map[string]string{forceCommand: "pcrs"}, nil), "reboot", 0, "policy: MISMATCH"},
		{"source-address", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, map[string]string{"source-address": "192.0.2.0/24"}, nil), "status", -1, ""},
		{"unknown critical option", newCert(t, ca.signer, user.signer, []string{"root"}, time.Hour, map[string]string{"verify-required": ""}, nil), "status", -1, ""},
		{"ops CA principal", newCert(t, opsCA.signer, user.signer, []string{"admin"}, time.Hour, nil, nil), "pcrs", 0, "sha256:7"},
		{"ops CA verbs", newCert(t, opsCA.signer, user.signer, []string{"ops"}, time.Hour, nil, nil), "reboot", ExitDenied, ""},
		{"ops CA needs its principals", newCert(t, opsCA.signer, user.signer, []string{"root"}, time.Hour, nil, nil), "status", -1, ""},
		{"ops CA verbs intersect", newCert(t, opsCA.signer, user.signer, []string{"ops"}, time.Hour, nil, map[string]string{extVerbs: "pcrs,reboot"}), "status", ExitDenied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(t, addr, tt.key, nil)
			if tt.code == -1 {
				if err == nil {
					c.Close()
					t.Fatal("login succeeded, want refused")
				}
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			defer c.Close()
			out, errs, code := runVerb(t, c, tt.cmd, "")
			if code != tt.code || !strings.Contains(out, tt.out) {
				t.Errorf("%q = exit %d, %q (stderr %q), want %d with %q", tt.cmd, code, out, errs, tt.code, tt.out)
			}
		})
	}
	if slices.Contains(b.Calls(), "reboot") {
		t.Errorf("backend calls %q: a restricted certificate rebooted", b.Calls())
	}
}

// TestOpenSSHCertificate: a certificate made by ssh-keygen (the oracle for
// the certificate format) logs OpenSSH's client in.
func TestOpenSSHCertificate(t *testing.T) {
	keygen := testenv.Tool(t, "ssh-keygen")
	dir := t.TempDir()
	caPath, caLine := writeKey(t, dir, "ca", "")
	id, _ := writeKey(t, dir, "user", "")
	pub, err := ssh.NewSignerFromKey(mustParseKey(t, id))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(id+".pub", ssh.MarshalAuthorizedKey(pub.PublicKey()), 0o644)
	testenv.Run(t, keygen, "-q", "-s", caPath, "-I", "owner", "-n", "root", "-V", "-1m:+1h", id+".pub")
	if _, err := os.Stat(filepath.Join(dir, "user-cert.pub")); err != nil {
		t.Fatal(err)
	}
	host := newHostKey(t)
	_, addr := startServer(t, Config{HostKey: host, UserCAKeys: []string{caLine}}, newFakeBackend())
	o := newOpenSSH(t, addr, host.PublicKey())
	out, errs, code := o.run(t, "", []string{id}, o.host, "status")
	if code != 0 || !strings.Contains(out, "stage:") {
		t.Errorf("ssh with an ssh-keygen certificate: exit %d, %q, stderr %q; want 0", code, out, errs)
	}
}

func mustParseKey(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
