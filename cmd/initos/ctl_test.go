package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"initos/control"
	"initos/control/client"
)

type ctlBackend struct{ control.Backend }

func (ctlBackend) Status(context.Context) (control.Status, error) {
	return control.Status{Stage: "wait-control", Mode: "boot"}, nil
}

func (ctlBackend) Unlock(_ context.Context, key []byte) error {
	if string(key) != "right" {
		return control.ErrWrongKey
	}
	return nil
}

// ctlFixture starts a control server and writes the owner's key and a
// known_hosts pinning the server.
func ctlFixture(t *testing.T) (addr, id, kh string) {
	t.Helper()
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "owner")
	id = filepath.Join(dir, "id")
	os.WriteFile(id, pem.EncodeToMemory(blk), 0o600)
	owner, _ := ssh.NewSignerFromKey(priv)
	_, hpriv, _ := ed25519.GenerateKey(rand.Reader)
	host, _ := ssh.NewSignerFromKey(hpriv)
	s, err := control.NewServer(control.Config{HostKey: host,
		AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(owner.PublicKey()))}}, ctlBackend{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, l); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	addr = l.Addr().String()
	kh = filepath.Join(dir, "known_hosts")
	if err := client.AddKnownHost(kh, []string{addr}, host.PublicKey()); err != nil {
		t.Fatal(err)
	}
	return addr, id, kh
}

func TestCtl(t *testing.T) {
	addr, id, kh := ctlFixture(t)
	down := func() string { l, _ := net.Listen("tcp", "127.0.0.1:0"); defer l.Close(); return l.Addr().String() }()
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte(addr+"\n"+down+"\n"), 0o644)
	common := []string{"ctl", "--identity", id, "--known-hosts", kh}
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{"status", []string{"--host", addr, "status"}, "", 0, "stage: wait-control", ""},
		{"status json", []string{"--host", addr, "--json", "status"}, "", 0, `"stage": "wait-control"`, ""},
		{"wrong key", []string{"--host", addr, "unlock"}, "wrong\n", control.ExitWrongKey, "", "wrong key"},
		{"right key", []string{"--host", addr, "unlock"}, "right\n", 0, "volumes open", ""},
		{"unknown verb", []string{"--host", addr, "shell"}, "", control.ExitUsage, "", `unknown verb "shell"`},
		{"unreachable", []string{"--host", down, "status"}, "", 255, "", "connection refused"},
		{"fleet", []string{"--hosts", hosts, "status"}, "", 1, "== " + addr + ": exit 0", "failed on 1 of 2 hosts"},
		{"no verb", []string{"--host", addr}, "", 2, "", "no verb given"},
		{"no host", []string{"status"}, "", 2, "", "exactly one of --host and --hosts"},
		{"both", []string{"--host", addr, "--hosts", hosts, "status"}, "", 2, "", "exactly one of --host and --hosts"},
		{"bad flag", []string{"--bogus", "status"}, "", 2, "", "flag provided but not defined: -bogus"},
		{"help", []string{"--help"}, "", 0, "usage: initos ctl", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctlStdin = strings.NewReader(tt.stdin)
			var out, errb bytes.Buffer
			err := run(context.Background(), append(common, tt.args...), &out, &errb)
			code := exitCode(err, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("initos %q = exit %d\nstdout %q\nstderr %q\nwant %d, %q, %q", tt.args, code, out.String(), errb.String(), tt.code, tt.stdout, tt.stderr)
			}
		})
	}
	ctlStdin = os.Stdin
}

func TestCtlFleetJSON(t *testing.T) {
	addr, id, kh := ctlFixture(t)
	addr2, id2, kh2 := ctlFixture(t)
	_ = id2
	b, _ := os.ReadFile(kh2)
	os.WriteFile(kh, append(mustRead(t, kh), b...), 0o600)
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte(addr+"\n"+addr2+"\n"), 0o644)
	var out bytes.Buffer
	err := run(context.Background(), []string{"ctl", "--identity", id, "--known-hosts", kh, "--hosts", hosts, "--json", "status"}, &out, io.Discard)
	var res []client.Result
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		t.Fatalf("--hosts --json output %q: %v", out.String(), jerr)
	}
	// The second server trusts another owner key: refused, the first OK.
	if len(res) != 2 || !res[0].OK() || res[1].OK() || !strings.Contains(res[1].Error, "unable to authenticate") {
		t.Errorf("results = %+v, want host 1 OK and host 2 refusing the key", res)
	}
	if exitCode(err, io.Discard) != 1 {
		t.Errorf("exit = %d, want 1 (one host failed)", exitCode(err, io.Discard))
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
