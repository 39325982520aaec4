package control

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeBackend records calls and answers like an initrd stopped at unlock
// with a PCR 7 mismatch.
type fakeBackend struct {
	mu      sync.Mutex
	key     string // the right unlock key
	calls   []string
	unlocks int
	power   chan string
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{key: "right-recovery-key", power: make(chan string, 4)}
}

func (f *fakeBackend) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeBackend) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var testStatus = Status{
	Stage: "wait-control", Mode: "boot", Slot: "A", Version: 3, BuildID: "b1", Kernel: "6.1.0-test",
	Failure: &Failure{Step: "unlock", Message: "volume 3f2a: TPM policy: PCR 7 mismatch",
		PCRs: []PCRMismatch{{Bank: "sha256", Index: 7, Expected: "aa11", Actual: "bb22"}}},
	Disks:   []Disk{{Name: "vda", Size: 8 << 30, Model: "QEMU"}},
	Volumes: []Volume{{Device: "/dev/vda3", UUID: "3f2a", State: "locked", Token: "systemd-tpm2", Reason: "PCR 7 mismatch"}},
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	f.record("status")
	return testStatus, nil
}

func (f *fakeBackend) Unlock(_ context.Context, key []byte) error {
	f.mu.Lock()
	f.unlocks++
	f.calls = append(f.calls, "unlock")
	f.mu.Unlock()
	if string(key) != f.key {
		return fmt.Errorf("volume 3f2a: %w", ErrWrongKey)
	}
	return nil
}

func (f *fakeBackend) PCRs(context.Context) (PCRReport, error) {
	f.record("pcrs")
	return PCRReport{Bank: "sha256", PCRs: []PCR{{Index: 7, Value: "bb22", Expected: "aa11"}, {Index: 11, Value: "cc33"}},
		EventLog: []Event{{PCR: 7, Type: "EV_EFI_VARIABLE_DRIVER_CONFIG", Digest: "dd44", Data: "SecureBoot"}}}, nil
}

func (f *fakeBackend) Reseal(context.Context) ([]string, error) {
	f.record("reseal")
	return []string{"volume 3f2a: TPM token re-enrolled against PCR 7=bb22"}, nil
}

func (f *fakeBackend) Logs(ctx context.Context, w io.Writer, follow bool) error {
	f.record(fmt.Sprintf("logs follow=%v", follow))
	fmt.Fprintln(w, "[    0.000000] Linux version 6.1.0-test")
	if !follow {
		return nil
	}
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			fmt.Fprintf(w, "[    %d.000000] tick\n", i)
		}
	}
}

func (f *fakeBackend) Reboot(context.Context) error {
	f.record("reboot")
	f.power <- "reboot"
	return nil
}
func (f *fakeBackend) PowerOff(context.Context) error {
	f.record("poweroff")
	f.power <- "poweroff"
	return nil
}

func (f *fakeBackend) BootNext(_ context.Context, slot string) error {
	f.record("bootnext " + slot)
	return nil
}

func (f *fakeBackend) Install(_ context.Context, cfg []byte, w io.Writer) error {
	f.record("install " + string(cfg))
	fmt.Fprintln(w, "install: done")
	return nil
}

// testKeys are an owner's key pairs for tests.
type testKey struct {
	signer ssh.Signer
	line   string // authorized_keys line
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, line: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))}
}

func newHostKey(t testing.TB) ssh.Signer {
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

// startServer serves cfg on 127.0.0.1 until the test ends and returns it
// with its address.
func startServer(t testing.TB, cfg Config, b Backend) (*Server, string) {
	t.Helper()
	if cfg.HostKey == nil {
		cfg.HostKey = newHostKey(t)
	}
	cfg.Logf = func(format string, args ...any) { t.Logf(format, args...) }
	s, err := NewServer(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil after cancel", err)
		}
	})
	return s, l.Addr().String()
}

// dial connects as root with key, pinning the host key.
func dial(t testing.TB, addr string, key ssh.Signer, host ssh.PublicKey) (*ssh.Client, error) {
	t.Helper()
	cfg := &ssh.ClientConfig{
		User:            User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(host),
		Timeout:         10 * time.Second,
	}
	if host == nil {
		cfg.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	}
	return ssh.Dial("tcp", addr, cfg)
}

// runVerb runs one command line and returns stdout, stderr and the exit
// status (-1 when the session ended without one).
func runVerb(t testing.TB, c *ssh.Client, cmd, stdin string) (string, string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr, sess.Stdin = &out, &errb, strings.NewReader(stdin)
	err = sess.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitStatus()
	}
	t.Logf("Run(%q): %v", cmd, err)
	return out.String(), errb.String(), -1
}

// run dials, runs one command and closes.
func run(t testing.TB, addr string, key ssh.Signer, cmd, stdin string) (string, string, int) {
	t.Helper()
	c, err := dial(t, addr, key, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	return runVerb(t, c, cmd, stdin)
}

// fakeClock is a settable clock for the limiters.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// useClock makes both limiters of s read c.
func useClock(s *Server, c *fakeClock) {
	s.conns.mu.Lock()
	s.conns.now = c.Now
	s.conns.mu.Unlock()
	s.keys.mu.Lock()
	s.keys.now = c.Now
	s.keys.mu.Unlock()
}
