package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// Options says how to reach hosts. Identities and KnownHosts are required.
type Options struct {
	User       string        // login name; default "root"
	Identities []ssh.Signer  // keys to authenticate with, in order
	KnownHosts string        // OpenSSH known_hosts file pinning host keys
	Port       int           // default port when a host has none; default 22
	Timeout    time.Duration // TCP connect plus SSH handshake; default 20s
}

const (
	defaultUser    = "root"
	defaultPort    = 22
	defaultTimeout = 20 * time.Second
)

func (o Options) withDefaults() Options {
	if o.User == "" {
		o.User = defaultUser
	}
	if o.Port == 0 {
		o.Port = defaultPort
	}
	if o.Timeout == 0 {
		o.Timeout = defaultTimeout
	}
	return o
}

// Addr returns host with the default port added when it has none.
func (o Options) Addr(host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(o.withDefaults().Port))
}

// Dial connects and authenticates to host, checking its key against
// KnownHosts. The caller closes the client.
func (o Options) Dial(ctx context.Context, host string) (*ssh.Client, error) {
	o = o.withDefaults()
	if len(o.Identities) == 0 {
		return nil, errors.New("ctl: no identity to log in with")
	}
	hk, err := hostKeyCallback(o.KnownHosts)
	if err != nil {
		return nil, err
	}
	addr := o.Addr(host)
	cfg := &ssh.ClientConfig{
		User: o.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(o.Identities...)},
		HostKeyCallback: hk, Timeout: o.Timeout,
		HostKeyAlgorithms: hostKeyAlgorithms(o.KnownHosts, addr),
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ctl: %s: %w", host, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ctl: %s: %w", host, err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Run runs command (a verb and its arguments) on host with stdin, copies
// its output to stdout and stderr, and returns its exit status. err is set
// when the host could not be reached, authenticated, or gave no status.
func (o Options) Run(ctx context.Context, host, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	c, err := o.Dial(ctx, host)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	return RunOn(ctx, c, command, stdin, stdout, stderr)
}

// RunOn runs command on an open connection (see Run).
func RunOn(ctx context.Context, c *ssh.Client, command string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	sess, err := c.NewSession()
	if err != nil {
		return -1, fmt.Errorf("ctl: open session: %w", err)
	}
	defer sess.Close()
	if stdin == nil {
		stdin = eofReader{}
	}
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	stop := context.AfterFunc(ctx, func() { sess.Close(); c.Close() })
	defer stop()
	err = sess.Run(command)
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	case ctx.Err() != nil:
		return -1, fmt.Errorf("ctl: %s: %w", command, ctx.Err())
	case errors.As(err, &missing):
		return -1, fmt.Errorf("ctl: %s: the host closed the session without an exit status", command)
	}
	return -1, fmt.Errorf("ctl: %s: %w", command, err)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
