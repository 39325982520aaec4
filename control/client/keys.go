package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"initos/internal/atomicfile"
)

// ErrHostKeyMismatch is wrapped when a host presents a key other than the
// one pinned in known_hosts: another machine answers at that address.
var ErrHostKeyMismatch = errors.New("host key mismatch")

// ErrUnknownHost is wrapped when known_hosts has no key for the host.
var ErrUnknownHost = errors.New("host not in known_hosts")

// hostKeyCallback checks host keys against the known_hosts file path,
// with clear errors for unknown hosts and changed keys.
func hostKeyCallback(path string) (ssh.HostKeyCallback, error) {
	if path == "" {
		return nil, errors.New("ctl: no known_hosts file: host keys must be pinned (learn them at install)")
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, fmt.Errorf("ctl: known_hosts: %w", err)
	}
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) == 0 {
			return fmt.Errorf("%w: %s has no entry in %s (its key is %s %s)", ErrUnknownHost, host, path, key.Type(), ssh.FingerprintSHA256(key))
		}
		var pinned []string
		for _, w := range ke.Want {
			pinned = append(pinned, fmt.Sprintf("%s (%s:%d)", ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
		return fmt.Errorf("%w: %s presented %s %s, but %s pins %s: another machine answers at this address",
			ErrHostKeyMismatch, host, key.Type(), ssh.FingerprintSHA256(key), path, strings.Join(pinned, ", "))
	}, nil
}

// hostKeyAlgorithms returns the key types known_hosts pins for addr, so the
// handshake negotiates the pinned key; nil lets x/crypto choose.
func hostKeyAlgorithms(path, addr string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	want := knownhosts.Normalize(addr)
	var algs []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(sc.Bytes())
		if err != nil || marker != "" {
			continue
		}
		for _, h := range hosts {
			if h == want {
				algs = append(algs, algorithmsFor(key.Type())...)
			}
		}
	}
	return algs
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// KnownHostsLine is the known_hosts line pinning key for the addresses
// (host or host:port).
func KnownHostsLine(addrs []string, key ssh.PublicKey) string {
	norm := make([]string, len(addrs))
	for i, a := range addrs {
		norm[i] = knownhosts.Normalize(a)
	}
	return knownhosts.Line(norm, key)
}

// AddKnownHost pins key for addrs in the known_hosts file path: lines
// naming any of addrs are replaced, other lines kept, and the file is
// rewritten atomically. The installer calls it with the TPM host key.
func AddKnownHost(path string, addrs []string, key ssh.PublicKey) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ctl: known_hosts: %w", err)
	}
	drop := map[string]bool{}
	for _, a := range addrs {
		drop[knownhosts.Normalize(a)] = true
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		if !namesAny(sc.Bytes(), drop) {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		}
	}
	out.WriteString(KnownHostsLine(addrs, key) + "\n")
	if err := atomicfile.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("ctl: known_hosts: %w", err)
	}
	return nil
}

// namesAny reports whether a known_hosts line is a plain entry for one of
// the hosts.
func namesAny(line []byte, hosts map[string]bool) bool {
	marker, names, _, _, _, err := ssh.ParseKnownHosts(line)
	if err != nil || marker != "" {
		return false
	}
	for _, n := range names {
		if hosts[n] {
			return true
		}
	}
	return false
}

// LoadIdentity reads an unencrypted OpenSSH, PKCS#8 or PEM private key.
// Encrypted keys are refused with a hint to load them into an agent.
func LoadIdentity(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ctl: identity: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("ctl: identity %s is encrypted: load it into ssh-agent (ssh-add) instead", path)
	}
	if err != nil {
		return nil, fmt.Errorf("ctl: identity %s: %w", path, err)
	}
	return s, nil
}

// DefaultIdentities returns the keys of the running ssh-agent
// ($SSH_AUTH_SOCK), then those of ~/.ssh/id_ed25519, id_ecdsa and id_rsa
// that exist and are not encrypted. The close function ends the agent
// connection.
func DefaultIdentities() ([]ssh.Signer, func(), error) {
	var signers []ssh.Signer
	closeFn := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			if s, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, s...)
			}
			closeFn = func() { c.Close() }
		}
	}
	home, _ := os.UserHomeDir()
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		if s, err := LoadIdentity(filepath.Join(home, ".ssh", name)); err == nil {
			signers = append(signers, s)
		}
	}
	if len(signers) == 0 {
		closeFn()
		return nil, nil, errors.New("ctl: no identity: give --identity KEY, or run ssh-agent with a key, or create ~/.ssh/id_ed25519")
	}
	return signers, closeFn, nil
}

// DefaultKnownHosts is ~/.ssh/known_hosts.
func DefaultKnownHosts() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".ssh", "known_hosts")
}
