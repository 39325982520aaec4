package control

import (
	"encoding/json"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestVerbs(t *testing.T) {
	owner := newTestKey(t)
	b := newFakeBackend()
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}, PerSource: Rate{Burst: 100, Every: time.Millisecond}}, b)
	tests := []struct {
		cmd, stdin string
		code       int
		stdout     []string // substrings
		stderr     string
	}{
		{cmd: "status", stdout: []string{"stage: wait-control", "PCR 7 (sha256): expected aa11, actual bb22", "volume: /dev/vda3 3f2a locked", "disk: vda 8.0GiB QEMU", "wrong unlock keys: 0"}},
		{cmd: "status --json", stdout: []string{`"index": 7`, `"stage": "wait-control"`}},
		{cmd: "pcrs", stdout: []string{"sha256:7  bb22  policy: MISMATCH, expected aa11", "sha256:11 cc33\n", "EV_EFI_VARIABLE_DRIVER_CONFIG"}},
		{cmd: "pcrs --json", stdout: []string{`"expected": "aa11"`}},
		{cmd: "reseal", stdout: []string{"resealed: volume 3f2a"}},
		{cmd: "boot-slot b", stdout: []string{"starts slot B"}},
		{cmd: "boot-slot --json A", stdout: []string{`"boot_next": "A"`}},
		{cmd: "logs", stdout: []string{"Linux version"}},
		{cmd: "logs --json", stdout: []string{`{"line":"[    0.000000] Linux version 6.1.0-test"}`}},
		{cmd: "help", stdout: []string{"unlock [--json] < KEY", "boot-slot"}},
		{cmd: "boot-slot C", code: ExitUsage, stderr: `boot-slot: want one slot, A or B, got ["C"]`},
		{cmd: "boot-slot", code: ExitUsage, stderr: "want one slot"},
		{cmd: "status extra", code: ExitUsage, stderr: `status: unexpected arguments ["extra"]`},
		{cmd: "shell", code: ExitUsage, stderr: `unknown verb "shell"`},
		{cmd: "install", code: ExitUsage, stderr: `unknown verb "install"`},
		{cmd: "", code: ExitUsage, stderr: "no verb given"},
		{cmd: "logs -x", code: ExitUsage, stderr: `logs: unexpected argument "-x"`},
		{cmd: "unlock", code: ExitUsage, stderr: "unlock: empty key on stdin"},
		{cmd: "status-x --json", code: ExitUsage, stdout: []string{`"exit": 2`, `"error": "unknown verb`}},
	}
	for _, tt := range tests {
		out, errs, code := run(t, addr, owner.signer, tt.cmd, tt.stdin)
		if code != tt.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tt.cmd, code, tt.code, errs)
		}
		for _, want := range tt.stdout {
			if !strings.Contains(out, want) {
				t.Errorf("%q: stdout = %q, want it to contain %q", tt.cmd, out, want)
			}
		}
		if !strings.Contains(errs, tt.stderr) {
			t.Errorf("%q: stderr = %q, want it to contain %q", tt.cmd, errs, tt.stderr)
		}
	}
	if got := b.Calls(); slices.Contains(got, "unlock") {
		t.Errorf("backend calls %q: an empty key reached Unlock", got)
	}
}

func TestStatusJSON(t *testing.T) {
	owner := newTestKey(t)
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}}, newFakeBackend())
	out, _, code := run(t, addr, owner.signer, "status --json", "")
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json = %q (exit %d): %v", out, code, err)
	}
	if st.Failure == nil || len(st.Failure.PCRs) != 1 || st.Failure.PCRs[0].Index != 7 {
		t.Errorf("status --json failure = %+v, want the PCR 7 mismatch", st.Failure)
	}
}

func TestUnlock(t *testing.T) {
	owner := newTestKey(t)
	b := newFakeBackend()
	s, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}}, b)
	if _, errs, code := run(t, addr, owner.signer, "unlock", "wrong\n"); code != ExitWrongKey || !strings.Contains(errs, "wrong key (1 wrong keys so far)") {
		t.Errorf("unlock(wrong) = exit %d %q, want %d and the count", code, errs, ExitWrongKey)
	}
	select {
	case <-s.Unlocked():
		t.Fatal("Unlocked() closed after a wrong key")
	default:
	}
	out, _, code := run(t, addr, owner.signer, "unlock --json", b.key+"\r\n")
	if code != 0 || !strings.Contains(out, `"unlocked": true`) {
		t.Errorf("unlock(right) = exit %d %q, want 0 and unlocked", code, out)
	}
	select {
	case <-s.Unlocked():
	case <-time.After(5 * time.Second):
		t.Fatal("Unlocked() not closed after the right key")
	}
	if out, _, _ := run(t, addr, owner.signer, "status", ""); !strings.Contains(out, "wrong unlock keys: 1") {
		t.Errorf("status after one wrong key = %q, want the count 1", out)
	}
}

// TestUnlockRateLimit: 20 wrong keys are answered by the rate limit (the
// backend sees only the burst), and the right key still works once the
// interval passed.
func TestUnlockRateLimit(t *testing.T) {
	owner := newTestKey(t)
	b := newFakeBackend()
	s, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}, Unlock: Rate{Burst: 3, Every: time.Hour},
		PerSource: Rate{Burst: 100, Every: time.Millisecond}}, b)
	clock := &fakeClock{t: time.Now()}
	useClock(s, clock)
	c, err := dial(t, addr, owner.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var codes []int
	for i := range 20 {
		_, errs, code := runVerb(t, c, "unlock", "wrong-"+string(rune('a'+i)))
		codes = append(codes, code)
		if code == ExitRateLimited && !strings.Contains(errs, "rate limited after 3 wrong keys: next attempt in 1h0m0s") {
			t.Errorf("attempt %d: stderr %q, want the rate-limit message", i, errs)
		}
	}
	want := append([]int{3, 3, 3}, slices.Repeat([]int{ExitRateLimited}, 17)...)
	if !slices.Equal(codes, want) {
		t.Errorf("exit statuses of 20 wrong keys = %v, want %v", codes, want)
	}
	if n := len(b.Calls()); n != 3 {
		t.Errorf("backend saw %d unlock attempts, want 3", n)
	}
	if _, _, code := runVerb(t, c, "unlock", b.key); code != ExitRateLimited {
		t.Errorf("right key while limited: exit %d, want %d", code, ExitRateLimited)
	}
	clock.Add(time.Hour)
	if _, errs, code := runVerb(t, c, "unlock", b.key); code != 0 {
		t.Errorf("right key after the interval: exit %d (%q), want 0", code, errs)
	}
}

func TestUnauthorized(t *testing.T) {
	owner, other := newTestKey(t), newTestKey(t)
	b := newFakeBackend()
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}}, b)
	if c, err := dial(t, addr, other.signer, nil); err == nil {
		c.Close()
		t.Fatal("dial with an unauthorized key succeeded")
	} else if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("dial with an unauthorized key: %v, want an authentication failure", err)
	}
	cfg := &ssh.ClientConfig{User: "admin", Auth: []ssh.AuthMethod{ssh.PublicKeys(owner.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	if c, err := ssh.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Error("dial as user admin succeeded, want only root")
	}
	pw := &ssh.ClientConfig{User: User, Auth: []ssh.AuthMethod{ssh.Password("x"), ssh.KeyboardInteractive(
		func(string, string, []string, []bool) ([]string, error) { return nil, nil })}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	if c, err := ssh.Dial("tcp", addr, pw); err == nil {
		c.Close()
		t.Error("password/keyboard-interactive login succeeded, want public keys only")
	}
	if len(b.Calls()) != 0 {
		t.Errorf("backend calls %q without authentication", b.Calls())
	}
}

// TestNoShellNoPTYNoForwarding: only exec; every other request and channel
// type is refused.
func TestNoShellNoPTYNoForwarding(t *testing.T) {
	owner := newTestKey(t)
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}}, newFakeBackend())
	c, err := dial(t, addr, owner.signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s1, _ := c.NewSession()
	if err := s1.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Error("RequestPty succeeded")
	}
	if err := s1.Shell(); err == nil {
		t.Error("Shell succeeded")
	}
	s1.Close()
	s2, _ := c.NewSession()
	if err := s2.RequestSubsystem("sftp"); err == nil {
		t.Error("RequestSubsystem(sftp) succeeded")
	}
	s2.Close()
	if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
		t.Error("direct-tcpip forwarding succeeded")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("tcpip-forward succeeded")
	}
	if ok, _, _ := c.SendRequest("auth-agent-req@openssh.com", true, nil); ok {
		t.Error("agent forwarding request succeeded")
	}
	if out, _, code := runVerb(t, c, "status", ""); code != 0 || out == "" {
		t.Errorf("status after refused requests: exit %d, want 0", code)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	owner := newTestKey(t)
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}, HandshakeTimeout: 300 * time.Millisecond}, newFakeBackend())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256)
	var n int
	for err == nil {
		var k int
		k, err = c.Read(buf[n:])
		n += k
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("a silent client was not disconnected (read %q)", buf[:n])
	}
	if !strings.HasPrefix(string(buf[:n]), "SSH-2.0-InitOS") {
		t.Errorf("banner %q, want SSH-2.0-InitOS", buf[:n])
	}
}

func TestMaxAuthTries(t *testing.T) {
	owner := newTestKey(t)
	_, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}, MaxAuthTries: 2}, newFakeBackend())
	var signers []ssh.Signer
	// x/crypto/ssh lets MaxAuthTries queries of unknown keys go free,
	// then counts them like failed logins: 4 wrong keys end it.
	for range 4 {
		signers = append(signers, newTestKey(t).signer)
	}
	signers = append(signers, owner.signer) // the right key comes too late
	cfg := &ssh.ClientConfig{User: User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)}, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	c, err := ssh.Dial("tcp", addr, cfg)
	if err == nil {
		c.Close()
		t.Fatal("login after 4 wrong keys succeeded with MaxAuthTries 2")
	}
	if !strings.Contains(err.Error(), "too many authentication failures") && !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("login after 4 wrong keys: %v, want too many authentication failures", err)
	}
}

func TestConnRateLimit(t *testing.T) {
	owner := newTestKey(t)
	s, addr := startServer(t, Config{AuthorizedKeys: []string{owner.line}, PerSource: Rate{Burst: 2, Every: time.Hour}}, newFakeBackend())
	clock := &fakeClock{t: time.Now()}
	useClock(s, clock)
	for i := range 2 {
		if _, _, code := run(t, addr, owner.signer, "status", ""); code != 0 {
			t.Fatalf("connection %d within the burst: exit %d", i, code)
		}
	}
	if c, err := dial(t, addr, owner.signer, nil); err == nil {
		c.Close()
		t.Fatal("third connection within the hour was served, want the per-source limit")
	}
	clock.Add(time.Hour)
	if _, _, code := run(t, addr, owner.signer, "status", ""); code != 0 {
		t.Errorf("connection after the interval: exit %d, want 0", code)
	}
}
