package control

import (
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// Config configures the control-plane server. Its zero value (plus a host
// key, some authorized keys and a Backend) is a working server with the
// defaults below. Everything that decides who may connect comes from the
// caller, which takes it from the signed initrd config: the server never
// reads keys from a file.
type Config struct {
	// Addr is the listen address; default ":22" (all addresses, port 22).
	Addr string
	// HostKey signs the SSH handshake: in the initrd, the TPM-derived key
	// (TPMHostKey wrapped by ssh.NewSignerFromSigner). Required.
	HostKey ssh.Signer
	// AuthorizedKeys are OpenSSH authorized_keys lines. A line with the
	// cert-authority option names a user CA (with an optional
	// principals="..." option); the option verbs="status,pcrs" limits a key
	// to those verbs. Unknown options are refused.
	AuthorizedKeys []string
	// UserCAKeys are user-certificate authorities (authorized_keys-format
	// public keys): a user certificate they signed, valid now, with the
	// principal "root", is accepted. Its critical option force-command
	// forces a verb; its extension "verbs@initos" limits the verbs.
	UserCAKeys []string
	// Install enables the install verb (the USB install mode).
	Install bool

	// HandshakeTimeout bounds the SSH handshake, authentication included.
	// Default 20s.
	HandshakeTimeout time.Duration
	// MaxAuthTries bounds the authentication attempts per connection.
	// Default 4.
	MaxAuthTries int
	// MaxConns bounds the connections served at once; default 32.
	// MaxConnsPerSource bounds them per source address; default 4.
	MaxConns, MaxConnsPerSource int
	// PerSource and Global rate-limit new connections (token buckets).
	// Defaults: 10 then 1 per 2s per source; 40 then 4 per second in all.
	PerSource, Global Rate
	// Unlock rate-limits wrong unlock keys: defaults 3 then 1 per 10s.
	Unlock Rate
	// MaxSessions bounds the concurrent sessions of one connection;
	// default 4.
	MaxSessions int

	// Logf receives one line per connection, authentication and verb
	// (the initrd sends it to the console and /dev/kmsg). Default: none.
	Logf func(format string, args ...any)
}

// Rate is a token bucket: Burst events at once, then one per Every.
type Rate struct {
	Burst int
	Every time.Duration
}

const (
	defaultAddr             = ":22"
	defaultHandshakeTimeout = 20 * time.Second
	defaultMaxAuthTries     = 4
	defaultMaxConns         = 32
	defaultMaxConnsPerSrc   = 4
	defaultMaxSessions      = 4
)

var (
	defaultPerSource = Rate{Burst: 10, Every: 2 * time.Second}
	defaultGlobal    = Rate{Burst: 40, Every: 250 * time.Millisecond}
	defaultUnlock    = Rate{Burst: 3, Every: 10 * time.Second}
)

func (c Config) withDefaults() Config {
	setDefault(&c.Addr, defaultAddr)
	setDefault(&c.HandshakeTimeout, defaultHandshakeTimeout)
	setDefault(&c.MaxAuthTries, defaultMaxAuthTries)
	setDefault(&c.MaxConns, defaultMaxConns)
	setDefault(&c.MaxConnsPerSource, defaultMaxConnsPerSrc)
	setDefault(&c.MaxSessions, defaultMaxSessions)
	setDefault(&c.PerSource, defaultPerSource)
	setDefault(&c.Global, defaultGlobal)
	setDefault(&c.Unlock, defaultUnlock)
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (c Config) check() error {
	switch {
	case c.HostKey == nil:
		return fmt.Errorf("control: config: no host key")
	case len(c.AuthorizedKeys) == 0 && len(c.UserCAKeys) == 0:
		return fmt.Errorf("control: config: no authorized key and no user CA: nobody could log in")
	}
	for name, r := range map[string]Rate{"per-source": c.PerSource, "global": c.Global, "unlock": c.Unlock} {
		if r.Burst < 1 || r.Every <= 0 {
			return fmt.Errorf("control: config: %s rate %d per %v: want a burst >= 1 and a positive interval", name, r.Burst, r.Every)
		}
	}
	return nil
}
