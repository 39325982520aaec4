package control

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"initos/internal/testenv"
)

// openssh drives Debian's OpenSSH client (the C oracle) against a server.
type openssh struct {
	bin, home, knownHosts string
	host, port            string
}

func newOpenSSH(t *testing.T, addr string, hostKey ssh.PublicKey) *openssh {
	t.Helper()
	o := &openssh{bin: testenv.Tool(t, "ssh"), home: t.TempDir()}
	var err error
	if o.host, o.port, err = net.SplitHostPort(addr); err != nil {
		t.Fatal(err)
	}
	o.knownHosts = filepath.Join(o.home, "known_hosts")
	o.pin(t, hostKey)
	return o
}

// pin writes the known_hosts file with key as the only host key of addr.
func (o *openssh) pin(t *testing.T, key ssh.PublicKey) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort(o.host, o.port))}, key)
	if err := os.WriteFile(o.knownHosts, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeKey writes an ed25519 private key in OpenSSH format (encrypted
// when passphrase is set) and returns its path and authorized_keys line.
func writeKey(t *testing.T, dir, name, passphrase string) (string, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, name)
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, name, []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	spub, _ := ssh.NewPublicKey(pub)
	return p, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
}

// run runs ssh with the identities and arguments; it returns stdout,
// stderr and the exit status.
func (o *openssh) run(t *testing.T, stdin string, ids []string, args ...string) (string, string, int) {
	t.Helper()
	argv := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + o.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20", "-p", o.port, "-l", User}
	for _, id := range ids {
		argv = append(argv, "-i", id)
	}
	argv = append(argv, args...)
	cmd := exec.Command(o.bin, argv...)
	cmd.Env = []string{"HOME=" + o.home, "PATH=/usr/bin:/bin"} // no agent
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ssh %q: %v", argv, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestOpenSSH runs the verbs with OpenSSH's client: ssh root@host VERB.
func TestOpenSSH(t *testing.T) {
	dir := t.TempDir()
	id, line := writeKey(t, dir, "owner", "")
	other, _ := writeKey(t, dir, "other", "")
	b := newFakeBackend()
	host := newHostKey(t)
	s, addr := startServer(t, Config{HostKey: host, AuthorizedKeys: []string{line},
		PerSource: Rate{Burst: 100, Every: time.Millisecond}}, b)
	o := newOpenSSH(t, addr, host.PublicKey())
	tests := []struct {
		name   string
		ids    []string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{"status", []string{id}, []string{o.host, "status"}, "", 0, "PCR 7 (sha256): expected aa11, actual bb22", ""},
		{"status json", []string{id}, []string{o.host, "status", "--json"}, "", 0, `"index": 7`, ""},
		{"wrong key", []string{id}, []string{o.host, "unlock"}, "nope\n", ExitWrongKey, "", "wrong key"},
		{"unauthorized", []string{other}, []string{o.host, "status"}, "", 255, "", "Permission denied (publickey)"},
		{"shell", []string{id}, []string{o.host}, "", 255, "", "shell request failed"},
		// -tt makes a refused PTY fatal for the client.
		{"pty", []string{id}, []string{"-tt", o.host, "status"}, "", 255, "", "PTY allocation request failed"},
		{"agent and X11 forwarding", []string{id}, []string{"-A", "-X", o.host, "status"}, "", 0, "stage", ""},
		{"port forwarding", []string{id}, []string{"-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:0:127.0.0.1:22", o.host, "status"}, "", 255, "", "forward"},
		{"unlock", []string{id}, []string{o.host, "unlock"}, b.key + "\n", 0, "volumes open", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := o.run(t, tt.stdin, tt.ids, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errs, tt.stderr) {
				t.Errorf("ssh %q = exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q",
					tt.args, code, out, errs, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
	select {
	case <-s.Unlocked():
	case <-time.After(5 * time.Second):
		t.Error("Unlocked() not closed after OpenSSH's unlock")
	}
}

// TestOpenSSHPinnedHostKey: a different machine on the same address (another
// host key) is refused by a client that pinned the first one.
func TestOpenSSHPinnedHostKey(t *testing.T) {
	dir := t.TempDir()
	id, line := writeKey(t, dir, "owner", "")
	_, addr := startServer(t, Config{AuthorizedKeys: []string{line}}, newFakeBackend())
	o := newOpenSSH(t, addr, newHostKey(t).PublicKey()) // pinned: another key
	_, errs, code := o.run(t, "", []string{id}, o.host, "status")
	if code != 255 || !strings.Contains(errs, "Host key verification failed") {
		t.Errorf("ssh to an impostor = exit %d, stderr %q; want 255 and a host key verification failure", code, errs)
	}
}

// TestAuthDecisionFromPermissions (CVE-2024-45337 class): OpenSSH offers
// the owner's full-power key A, which the server's callback accepts, but
// cannot sign with it (encrypted, BatchMode) and logs in with key B, which
// may only run status. The session must have B's rights: reboot is denied
// although the callback's last "accepted" key before B was A. A server
// deciding from keys seen in the callback would reboot.
func TestAuthDecisionFromPermissions(t *testing.T) {
	dir := t.TempDir()
	idA, lineA := writeKey(t, dir, "a-full", "secret passphrase")
	idB, lineB := writeKey(t, dir, "b-status-only", "")
	b := newFakeBackend()
	host := newHostKey(t)
	s, addr := startServer(t, Config{HostKey: host, AuthorizedKeys: []string{lineA, `verbs="status" ` + lineB},
		PerSource: Rate{Burst: 100, Every: time.Millisecond}}, b)
	var mu sync.Mutex
	var seen []string // keys the callback accepted, in order
	inner := s.ssh.PublicKeyCallback
	s.ssh.PublicKeyCallback = func(m ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		p, err := inner(m, k)
		if err == nil {
			mu.Lock()
			seen = append(seen, ssh.FingerprintSHA256(k))
			mu.Unlock()
		}
		return p, err
	}
	pubA, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(lineA))
	pubB, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(lineB))
	o := newOpenSSH(t, addr, host.PublicKey())
	_, errs, code := o.run(t, "", []string{idA, idB}, o.host, "reboot")
	if code != ExitDenied || !strings.Contains(errs, "reboot: not allowed for "+ssh.FingerprintSHA256(pubB)) {
		t.Errorf("ssh -i A -i B reboot = exit %d, stderr %q; want %d, denied for key B", code, errs, ExitDenied)
	}
	mu.Lock()
	if !slices.Contains(seen, ssh.FingerprintSHA256(pubA)) {
		t.Errorf("the callback never accepted key A (accepted %q): the test did not exercise the attack", seen)
	}
	mu.Unlock()
	if slices.Contains(b.Calls(), "reboot") {
		t.Fatal("the backend rebooted: the session got key A's rights")
	}
	if out, _, code := o.run(t, "", []string{idA, idB}, o.host, "status"); code != 0 || !strings.Contains(out, "stage:") {
		t.Errorf("status with key B: exit %d %q, want 0", code, out)
	}
}
