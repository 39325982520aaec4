package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Server is the control-plane SSH server of the initrd.
type Server struct {
	cfg     Config
	backend Backend
	ssh     *ssh.ServerConfig
	conns   *connLimiter
	keys    *keyLimiter

	unlockMu   sync.Mutex // one Backend.Unlock at a time
	unlocked   chan struct{}
	unlockOnce sync.Once
	wg         sync.WaitGroup
}

// NewServer checks cfg (see Config for the defaults) and returns a server
// that answers verbs with b.
func NewServer(cfg Config, b Backend) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("control: no backend")
	}
	auth, err := newAuthorizer(cfg.AuthorizedKeys, cfg.UserCAKeys)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, backend: b, conns: newConnLimiter(cfg),
		keys: &keyLimiter{now: time.Now, rate: cfg.Unlock}, unlocked: make(chan struct{})}
	s.ssh = &ssh.ServerConfig{
		PublicKeyCallback: auth.publicKey,
		MaxAuthTries:      cfg.MaxAuthTries,
		ServerVersion:     "SSH-2.0-InitOS",
		AuthLogCallback: func(m ssh.ConnMetadata, method string, err error) {
			if err != nil && method != "none" {
				cfg.Logf("control: %s: auth %s refused: %v", m.RemoteAddr(), method, err)
			}
		},
	}
	s.ssh.AddHostKey(cfg.HostKey)
	return s, nil
}

// Unlocked is closed once an unlock succeeded and its answer was sent: the
// initrd then stops the server (cancels Serve's context) and boots on.
func (s *Server) Unlocked() <-chan struct{} { return s.unlocked }

// WrongKeys returns the number of wrong unlock keys so far.
func (s *Server) WrongKeys() int { return s.keys.wrongKeys() }

// ListenAndServe listens on Config.Addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return s.Serve(ctx, l)
}

// Serve accepts connections on l until ctx ends, then closes l and every
// connection and returns nil once all of them are gone. It returns an error
// only when l fails.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); l.Close() }()
	s.cfg.Logf("control: listening on %s (host key %s)", l.Addr(), ssh.FingerprintSHA256(s.cfg.HostKey.PublicKey()))
	var err error
	for delay := time.Duration(0); ; {
		var c net.Conn
		c, err = l.Accept()
		if err == nil {
			delay = 0
			s.wg.Add(1)
			go s.serveConn(ctx, c)
			continue
		}
		if ctx.Err() != nil {
			err = nil
			break
		}
		if delay = min(max(2*delay, 5*time.Millisecond), time.Second); isTemporary(err) {
			time.Sleep(delay) // e.g. EMFILE: wait instead of spinning
			continue
		}
		break
	}
	cancel()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("control: accept: %w", err)
	}
	return nil
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// serveConn runs one connection: limits, handshake, sessions.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	src := sourceOf(c.RemoteAddr())
	if ok, reason := s.conns.admit(src); !ok {
		s.cfg.Logf("control: %s: refused: %s", c.RemoteAddr(), reason)
		return
	}
	defer s.conns.release(src)
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, s.ssh)
	if err != nil {
		s.cfg.Logf("control: %s: handshake: %v", c.RemoteAddr(), err)
		return
	}
	c.SetDeadline(time.Time{})
	s.cfg.Logf("control: %s: authenticated: %s", c.RemoteAddr(), identity(sc.Permissions))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); sc.Close() }()
	go ssh.DiscardRequests(reqs) // tcpip-forward and friends: refused
	s.channels(ctx, sc, chans)
}

// channels accepts session channels (at most MaxSessions at once) and
// refuses every other channel type: no port or agent forwarding, no X11.
func (s *Server) channels(ctx context.Context, sc *ssh.ServerConn, chans <-chan ssh.NewChannel) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	sem := make(chan struct{}, s.cfg.MaxSessions)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			s.cfg.Logf("control: %s: channel %q refused", sc.RemoteAddr(), nc.ChannelType())
			nc.Reject(ssh.Prohibited, "only exec sessions: no forwarding")
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			nc.Reject(ssh.ResourceShortage, "too many sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.session(ctx, sc, ch, creqs)
		}()
	}
}

// sourceOf is the rate-limit key of an address: its IP.
func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (s *Server) markUnlocked() { s.unlockOnce.Do(func() { close(s.unlocked) }) }
