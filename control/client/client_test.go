package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"initos/control"
)

// backend answers status and unlock like a stopped initrd.
type backend struct{ control.Backend }

func (backend) Status(context.Context) (control.Status, error) {
	return control.Status{Stage: "wait-control", Mode: "boot",
		Failure: &control.Failure{Step: "unlock", Message: "PCR 7 mismatch"}}, nil
}

func (backend) Unlock(_ context.Context, key []byte) error {
	if string(key) != "right" {
		return control.ErrWrongKey
	}
	return nil
}

func (backend) Logs(_ context.Context, w io.Writer, _ bool) error {
	_, err := io.WriteString(w, "[    0.000000] Linux\n")
	return err
}

func signer(t *testing.T) ssh.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve starts a control server with host key hk that trusts owner.
func serve(t *testing.T, hk, owner ssh.Signer) string {
	t.Helper()
	s, err := control.NewServer(control.Config{HostKey: hk,
		AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(owner.PublicKey()))}}, backend{})
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
	return l.Addr().String()
}

func TestRunPinned(t *testing.T) {
	owner, hk, impostor := signer(t), signer(t), signer(t)
	addr := serve(t, hk, owner)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	o := Options{Identities: []ssh.Signer{owner}, KnownHosts: kh}
	if _, err := o.Run(context.Background(), addr, "status", nil, io.Discard, io.Discard); err == nil {
		t.Errorf("Run before the host is known = %v, want an error", err)
	}
	if err := AddKnownHost(kh, []string{addr}, impostor.PublicKey()); err != nil {
		t.Fatal(err)
	}
	_, err := o.Run(context.Background(), addr, "status", nil, io.Discard, io.Discard)
	if !errors.Is(err, ErrHostKeyMismatch) || !strings.Contains(err.Error(), "another machine answers") {
		t.Errorf("Run against another host key = %v, want %v", err, ErrHostKeyMismatch)
	}
	if err := AddKnownHost(kh, []string{addr}, hk.PublicKey()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := o.Run(context.Background(), addr, "status", nil, &out, io.Discard)
	if err != nil || code != 0 || !strings.Contains(out.String(), "failure: unlock: PCR 7 mismatch") {
		t.Errorf("Run(status) = %d, %v, %q; want 0 and the failure", code, err, out.String())
	}
	code, err = o.Run(context.Background(), addr, "unlock", strings.NewReader("wrong\n"), io.Discard, io.Discard)
	if err != nil || code != control.ExitWrongKey {
		t.Errorf("Run(unlock wrong) = %d, %v; want %d", code, err, control.ExitWrongKey)
	}
	b, _ := os.ReadFile(kh)
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("known_hosts has %d lines after re-pinning, want 1:\n%s", n, b)
	}
}

func TestRunAll(t *testing.T) {
	owner, hk1, hk2 := signer(t), signer(t), signer(t)
	a, b := serve(t, hk1, owner), serve(t, hk2, owner)
	down := func() string { l, _ := net.Listen("tcp", "127.0.0.1:0"); defer l.Close(); return l.Addr().String() }()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	AddKnownHost(kh, []string{a}, hk1.PublicKey())
	AddKnownHost(kh, []string{b}, hk1.PublicKey()) // wrong pin: b is refused
	AddKnownHost(kh, []string{down}, hk2.PublicKey())
	o := Options{Identities: []ssh.Signer{owner}, KnownHosts: kh}
	res := o.RunAll(context.Background(), []string{a, b, down}, "status --json", nil, 2)
	if len(res) != 3 {
		t.Fatalf("RunAll returned %d results, want 3", len(res))
	}
	if !res[0].OK() || !strings.Contains(string(res[0].Answer), `"stage": "wait-control"`) {
		t.Errorf("host a: %+v, want OK with a JSON answer", res[0])
	}
	if res[1].OK() || !strings.Contains(res[1].Error, "host key mismatch") {
		t.Errorf("host b: %+v, want a host key mismatch", res[1])
	}
	if res[2].OK() || !strings.Contains(res[2].Error, "connection refused") {
		t.Errorf("host down: %+v, want connection refused", res[2])
	}
	for i, h := range []string{a, b, down} {
		if res[i].Host != h {
			t.Errorf("result %d is for %s, want %s (the order of the hosts)", i, res[i].Host, h)
		}
	}
}

func TestReadHosts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ text, err string }{
		{"a\n# comment\n\nb:2222 # lab\n", ""},
		{"a b\n", "want one host a line"},
		{"# none\n", "no host"},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, fmt.Sprint(i))
		os.WriteFile(p, []byte(tt.text), 0o644)
		hosts, err := ReadHosts(p)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ReadHosts(%q) = %v, %v; want error %q", tt.text, hosts, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(hosts, ",") != "a,b:2222" {
			t.Errorf("ReadHosts(%q) = %q, %v; want a, b:2222", tt.text, hosts, err)
		}
	}
}

func TestLoadIdentity(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	plain, _ := ssh.MarshalPrivateKey(priv, "")
	enc, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
	os.WriteFile(filepath.Join(dir, "plain"), pem.EncodeToMemory(plain), 0o600)
	os.WriteFile(filepath.Join(dir, "enc"), pem.EncodeToMemory(enc), 0o600)
	os.WriteFile(filepath.Join(dir, "junk"), []byte("junk"), 0o600)
	if _, err := LoadIdentity(filepath.Join(dir, "plain")); err != nil {
		t.Errorf("LoadIdentity(plain) = %v", err)
	}
	for name, want := range map[string]string{"enc": "is encrypted: load it into ssh-agent", "junk": "identity", "missing": "no such file"} {
		if _, err := LoadIdentity(filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadIdentity(%s) = %v, want error %q", name, err, want)
		}
	}
}
