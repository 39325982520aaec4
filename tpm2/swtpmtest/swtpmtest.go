package swtpmtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"initos/internal/testenv"
)

// Swtpm is a running swtpm. Exactly one of Socket or Host/Port is set.
type Swtpm struct {
	Dir    string // state directory (absolute)
	Socket string // Unix socket (raw TPM command framing)
	Host   string // TCP host and port (control channel on Port+1)
	Port   int
}

// Device returns the --tpm2-device string for s.
func (s *Swtpm) Device() string {
	if s.Socket != "" {
		return "swtpm:path=" + s.Socket
	}
	return fmt.Sprintf("swtpm:host=%s,port=%d", s.Host, s.Port)
}

// Start starts an swtpm on a Unix socket in a temp dir.
func Start(t testing.TB) *Swtpm {
	t.Helper()
	dir := t.TempDir()
	s := &Swtpm{Dir: dir, Socket: filepath.Join(dir, "s")}
	s.run(t, "--server", "type=unixio,path="+s.Socket, "--ctrl", "type=unixio,path="+filepath.Join(dir, "c"))
	return s
}

// StartTCP starts an swtpm on free TCP ports P (server) and P+1 (control),
// the layout the libtss2 swtpm TCTI (systemd's tools) expects.
func StartTCP(t testing.TB) *Swtpm {
	t.Helper()
	port := FreePortPair(t)
	s := &Swtpm{Dir: t.TempDir(), Host: "127.0.0.1", Port: port}
	s.run(t, "--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1))
	return s
}

func (s *Swtpm) run(t testing.TB, args ...string) {
	t.Helper()
	bin := testenv.Tool(t, "swtpm")
	args = append([]string{"socket", "--tpm2", "--tpmstate", "dir=" + s.Dir,
		"--flags", "not-need-init,startup-clear"}, args...)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(s.Dir, "swtpm.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	s.wait(t, done)
}

// wait polls until the server accepts a connection or swtpm exits.
func (s *Swtpm) wait(t testing.TB, done chan struct{}) {
	t.Helper()
	network, addr := "unix", s.Socket
	if addr == "" {
		network, addr = "tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	for range 1000 {
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "swtpm.log"))
			t.Fatalf("swtpm exited early:\n%s", b)
		default:
		}
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("swtpm did not listen on %s %s", network, addr)
}

// FreePortPair finds P such that P and P+1 are both free, by listening.
func FreePortPair(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free TCP port pair")
	return 0
}
