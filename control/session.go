package control

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// Exit statuses of the verbs, as the SSH exit-status.
const (
	ExitOK          = 0 // done
	ExitFailed      = 1 // the backend failed (message on stderr)
	ExitUsage       = 2 // unknown verb, bad arguments
	ExitWrongKey    = 3 // unlock: the key opened nothing
	ExitRateLimited = 4 // unlock: too many wrong keys, try later
	ExitDenied      = 5 // the key may not run this verb
)

// session serves one session channel: exactly one exec request; pty-req,
// shell, subsystem, x11-req, env and agent forwarding are refused.
func (s *Server) session(ctx context.Context, sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer ch.Close()
	// A session that asks for no command in time is closed.
	noExec := time.AfterFunc(s.cfg.HandshakeTimeout, func() { ch.Close() })
	defer noExec.Stop()
	var done chan struct{}
	for req := range reqs {
		if req.Type != "exec" || done != nil {
			s.refuse(sc, ch, req)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			req.Reply(false, nil)
			continue
		}
		noExec.Stop()
		req.Reply(true, nil)
		done = make(chan struct{})
		go func() {
			defer close(done)
			after := s.exec(ctx, sc, ch, p.Command)
			ch.CloseWrite()
			ch.Close()
			if after != nil {
				after()
			}
		}()
	}
	// The client closed the channel (or the connection died): stop the
	// verb (logs -f) and wait for it.
	cancel()
	if done != nil {
		<-done
	}
}

// refuse answers a request the control plane never grants.
func (s *Server) refuse(sc *ssh.ServerConn, ch ssh.Channel, req *ssh.Request) {
	switch req.Type {
	case "shell":
		fmt.Fprintf(ch.Stderr(), "initos: no shell here; run a verb: ssh %s@HOST help\r\n", User)
	case "env":
		req.Reply(false, nil) // harmless (SendEnv): not logged
		return
	}
	s.cfg.Logf("control: %s: %s: request %q refused", sc.RemoteAddr(), identity(sc.Permissions), req.Type)
	req.Reply(false, nil)
}

// exec runs one command line and sends its exit status. It returns what
// must happen once the channel is closed (reboot, unlock continues).
func (s *Server) exec(ctx context.Context, sc *ssh.ServerConn, ch ssh.Channel, command string) (after func()) {
	who := identity(sc.Permissions)
	if fc, ok := sc.Permissions.CriticalOptions[forceCommand]; ok {
		command = fc
	}
	r := &request{ctx: ctx, s: s, perms: sc.Permissions, stdin: ch, stdout: ch, stderr: ch.Stderr()}
	code := r.run(command)
	s.cfg.Logf("control: %s: %s: %q: exit %d", sc.RemoteAddr(), who, command, code)
	sendExitStatus(ch, code)
	if code != ExitOK {
		return nil
	}
	return r.after
}

func sendExitStatus(ch ssh.Channel, code int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}

// request is one verb being run.
type request struct {
	ctx    context.Context
	s      *Server
	perms  *ssh.Permissions
	verb   string
	args   []string // after the verb, --json removed
	json   bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	after  func() // run after the answer was sent, on success
}
