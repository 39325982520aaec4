package client

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

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
