package swtpmtest

import (
	"fmt"
	"io"
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

// Reboot resets the TPM as a platform reset does (swtpm's control
// command CMD_INIT, then TPM2_Startup(TPM_SU_CLEAR)): the PCRs are back to
// their reset values, transient objects and sessions are gone, persistent
// state (seeds, NV, dictionary-attack counter) stays. No client may be
// connected.
func (s *Swtpm) Reboot(t testing.TB) {
	t.Helper()
	network, ctrl, server := "unix", filepath.Join(s.Dir, "c"), s.Socket
	if s.Socket == "" {
		network = "tcp"
		ctrl = net.JoinHostPort(s.Host, strconv.Itoa(s.Port+1))
		server = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	// CMD_INIT (2) with no flags; the answer is a u32 TPM result.
	exchange(t, network, ctrl, []byte{0, 0, 0, 2, 0, 0, 0, 0}, 4)
	// TPM2_Startup(TPM_SU_CLEAR): tag ST_NO_SESSIONS, size 12, CC 0x144.
	rsp := exchange(t, network, server, []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x44, 0, 0}, 10)
	if rc := rsp[6:10]; string(rc) != "\x00\x00\x00\x00" {
		t.Fatalf("swtpm reboot: TPM2_Startup answered %x", rsp)
	}
}

// exchange sends req on a new connection and reads n bytes back.
func exchange(t testing.TB, network, addr string, req []byte, n int) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatalf("swtpm reboot: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatalf("swtpm reboot: %v", err)
	}
	rsp := make([]byte, n)
	if _, err := io.ReadFull(c, rsp); err != nil {
		t.Fatalf("swtpm reboot: read answer from %s: %v", addr, err)
	}
	if n == 4 && string(rsp) != "\x00\x00\x00\x00" {
		t.Fatalf("swtpm reboot: control answered %x", rsp)
	}
	return rsp
}
