package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// serve runs one SSH connection: session channels with exec requests.
func (h *host) serve(c net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		c.Close()
		return
	}
	h.mu.Lock()
	h.conns++
	h.mu.Unlock()
	defer func() {
		sc.Close()
		h.mu.Lock()
		h.conns--
		h.mu.Unlock()
	}()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go h.session(ch, creqs)
	}
}

// session answers the first exec request; any other request is refused.
func (h *host) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	go io.Copy(io.Discard, ch) // stdin: nothing reads it
	for r := range reqs {
		if r.Type != "exec" {
			r.Reply(false, nil)
			continue
		}
		var p struct{ Cmd string }
		if err := ssh.Unmarshal(r.Payload, &p); err != nil {
			r.Reply(false, nil)
			return
		}
		r.Reply(true, nil)
		code := h.run(p.Cmd, ch, ch.Stderr())
		h.logf("FLEET-EXEC %s exit=%d %s", h.name, code, p.Cmd)
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
		if p.Cmd == "poweroff" {
			h.shutdown <- unix.LINUX_REBOOT_CMD_POWER_OFF
		}
		return
	}
}

// run runs a command line: "poweroff", or `initos ARGS` (words split as
// a POSIX shell would for the quoting the ctl client uses).
func (h *host) run(line string, stdout, stderr io.Writer) int {
	args, err := splitWords(line)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "fleetinit: %v\n", err)
		return 2
	case len(args) == 1 && args[0] == "poweroff":
		return 0
	case len(args) == 0 || args[0] != "initos":
		fmt.Fprintf(stderr, "fleetinit: only initos commands and poweroff here, not %q\n", line)
		return 127
	}
	cmd := exec.Command(initosPath, args[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintf(stderr, "fleetinit: %v\n", err)
		return 126
	}
	return 0
}

// splitWords splits a command line into words: blanks separate them,
// single quotes quote everything up to the next one, a backslash quotes
// the next character outside single quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteByte(c)
		case c == '\'':
			quoted, in = true, true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			in = true
		case c == ' ' || c == '\t':
			if in {
				words, in = append(words, w.String()), false
				w.Reset()
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

// drain waits, at most timeout, until the SSH clients closed their
// connections (the last command's output and exit status reached them).
func (h *host) drain(timeout time.Duration) {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		h.mu.Lock()
		n := h.conns
		h.mu.Unlock()
		if n == 0 {
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
}
