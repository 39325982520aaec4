package control

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"initos/internal/testenv"
)

// runCommand runs a command line through the verb dispatcher without SSH.
func runCommand(s *Server, perms *ssh.Permissions, command, stdin string) (string, string, int) {
	var out, errb bytes.Buffer
	r := &request{ctx: context.Background(), s: s, perms: perms, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}
	code := r.run(command)
	return out.String(), errb.String(), code
}

func FuzzCommand(f *testing.F) {
	for _, c := range []string{"status", "status --json", "unlock", "boot-slot A", "logs -f", "help", "install", "pcrs x y", "\x00", "boot-slot \u00e9"} {
		f.Add(c, "key")
	}
	s, err := NewServer(Config{HostKey: newHostKey(f), AuthorizedKeys: []string{newTestKey(f).line},
		Unlock: Rate{Burst: 1 << 30, Every: time.Nanosecond}}, newFakeBackend())
	if err != nil {
		f.Fatal(err)
	}
	perms := &ssh.Permissions{Extensions: map[string]string{extKey: "fuzz", extVerbs: "status,unlock,boot-slot,help,pcrs,install"}}
	f.Fuzz(func(t *testing.T, command, stdin string) {
		_, _, code := runCommand(s, perms, command, stdin)
		if code < ExitOK || code > ExitDenied {
			t.Errorf("run(%q) = exit %d, not an Exit* status", command, code)
		}
	})
}

func TestRestrictedVerbs(t *testing.T) {
	s, err := NewServer(Config{HostKey: newHostKey(t), AuthorizedKeys: []string{newTestKey(t).line}}, newFakeBackend())
	if err != nil {
		t.Fatal(err)
	}
	perms := &ssh.Permissions{Extensions: map[string]string{extKey: "SHA256:x", extVerbs: "status,help"}}
	if _, errs, code := runCommand(s, perms, "reboot", ""); code != ExitDenied || !strings.Contains(errs, "reboot: not allowed for SHA256:x") {
		t.Errorf("reboot with verbs=status: exit %d %q, want %d", code, errs, ExitDenied)
	}
	if out, _, _ := runCommand(s, perms, "help", ""); strings.Contains(out, "reboot") || !strings.Contains(out, "status") {
		t.Errorf("help with verbs=status,help = %q, want only the allowed verbs", out)
	}
	if _, _, code := runCommand(s, &ssh.Permissions{}, "status", ""); code != ExitDenied {
		t.Errorf("status without an authenticated identity: exit %d, want %d", code, ExitDenied)
	}
}

func TestNewServerErrors(t *testing.T) {
	hk, key := newHostKey(t), newTestKey(t)
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{AuthorizedKeys: []string{key.line}}, "no host key"},
		{Config{HostKey: hk}, "nobody could log in"},
		{Config{HostKey: hk, AuthorizedKeys: []string{"ssh-ed25519 AAAA"}}, "authorized key 1"},
		{Config{HostKey: hk, AuthorizedKeys: []string{`from="10.0.0.0/8" ` + key.line}}, `option "from=\"10.0.0.0/8\"" is not supported`},
		{Config{HostKey: hk, AuthorizedKeys: []string{`verbs="status,shell" ` + key.line}}, `unknown verb "shell"`},
		{Config{HostKey: hk, AuthorizedKeys: []string{`principals="a" ` + key.line}}, "principals= needs cert-authority"},
		{Config{HostKey: hk, UserCAKeys: []string{`cert-authority ` + key.line}}, "user CA key 1: options"},
		{Config{HostKey: hk, AuthorizedKeys: []string{key.line}, Unlock: Rate{Burst: -1, Every: time.Second}}, "unlock rate -1 per 1s"},
	}
	for _, tt := range tests {
		_, err := NewServer(tt.cfg, newFakeBackend())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewServer(%+v) = %v, want error %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := NewServer(Config{HostKey: hk, AuthorizedKeys: []string{key.line}}, nil); err == nil {
		t.Error("NewServer(nil backend) succeeded")
	}
}

// TestReadKmsg reads the host's own kernel log (tier 1: root).
func TestReadKmsg(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := os.Stat(KmsgPath); err != nil {
		testenv.Missing(t, "%s: %v", KmsgPath, err)
	}
	var out bytes.Buffer
	if err := ReadKmsg(context.Background(), &out, false); err != nil {
		t.Fatalf("ReadKmsg(follow=false) = %v", err)
	}
	if !strings.HasPrefix(out.String(), "[") {
		t.Errorf("ReadKmsg output starts %.60q, want dmesg-style records", out.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := ReadKmsg(ctx, &bytes.Buffer{}, true); err != context.DeadlineExceeded {
		t.Errorf("ReadKmsg(follow) = %v, want %v when ctx ends", err, context.DeadlineExceeded)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("ReadKmsg(follow) returned %v after ctx ended", d)
	}
}
