package control

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// User is the only login name the server accepts (ssh root@host VERB).
const User = "root"

// Permission extensions the server sets on an authenticated connection.
// Every decision after authentication reads them from the connection's
// Permissions, which x/crypto/ssh binds to the key that proved possession:
// never from a key merely seen by the public-key callback (a client may
// offer keys it cannot sign with: CVE-2024-45337).
const (
	extKey   = "key@initos"   // who: key or certificate identity
	extVerbs = "verbs@initos" // comma-separated allowed verbs; absent: all
)

// forceCommand is the OpenSSH certificate critical option forcing a command.
const forceCommand = "force-command"

// authKey is one authorized key with its restrictions.
type authKey struct {
	verbs []string // nil: every verb
}

// authCA is one trusted user CA.
type authCA struct {
	principals []string // nil: the principal must be User
	verbs      []string
}

// authorizer decides who may log in. It is immutable after newAuthorizer,
// and its callback keeps no state between calls.
type authorizer struct {
	keys map[string]authKey // by marshalled public key
	cas  map[string]authCA
}

func newAuthorizer(authorized, cas []string) (*authorizer, error) {
	a := &authorizer{keys: map[string]authKey{}, cas: map[string]authCA{}}
	for i, line := range authorized {
		if err := a.addLine(line); err != nil {
			return nil, fmt.Errorf("control: authorized key %d: %w", i+1, err)
		}
	}
	for i, line := range cas {
		pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("control: user CA key %d: %w", i+1, err)
		}
		if len(opts) > 0 {
			return nil, fmt.Errorf("control: user CA key %d: options %q are not allowed here", i+1, opts)
		}
		a.cas[string(pub.Marshal())] = authCA{}
	}
	return a, nil
}

// addLine parses one authorized_keys line.
func (a *authorizer) addLine(line string) error {
	pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return err
	}
	if _, isCert := pub.(*ssh.Certificate); isCert {
		return errors.New("a certificate is not an authorized key (trust its CA instead)")
	}
	var ca bool
	var verbs, principals []string
	for _, o := range opts {
		name, val, hasVal := strings.Cut(o, "=")
		val = strings.Trim(val, `"`)
		switch {
		case name == "cert-authority" && !hasVal:
			ca = true
		case name == "verbs" && hasVal:
			if verbs, err = parseVerbList(val); err != nil {
				return err
			}
		case name == "principals" && hasVal:
			principals = strings.Split(val, ",")
		default:
			return fmt.Errorf("option %q is not supported (cert-authority, principals=, verbs=)", o)
		}
	}
	if principals != nil && !ca {
		return errors.New("option principals= needs cert-authority")
	}
	if ca {
		a.cas[string(pub.Marshal())] = authCA{principals: principals, verbs: verbs}
	} else {
		a.keys[string(pub.Marshal())] = authKey{verbs: verbs}
	}
	return nil
}

func parseVerbList(s string) ([]string, error) {
	verbs := strings.Split(s, ",")
	for _, v := range verbs {
		if _, ok := verbTable[v]; !ok {
			return nil, fmt.Errorf("verbs=%q: unknown verb %q", s, v)
		}
	}
	return verbs, nil
}

// publicKey is the ssh.ServerConfig.PublicKeyCallback. It is a pure
// function of (user, key): the Permissions it returns carry the identity
// and restrictions of exactly this key.
func (a *authorizer) publicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if meta.User() != User {
		return nil, fmt.Errorf("user %q refused: only %q", meta.User(), User)
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		return a.certificate(meta, cert)
	}
	k, ok := a.keys[string(key.Marshal())]
	if !ok {
		return nil, fmt.Errorf("key %s is not authorized", ssh.FingerprintSHA256(key))
	}
	perms := &ssh.Permissions{Extensions: map[string]string{extKey: ssh.FingerprintSHA256(key)}}
	if k.verbs != nil {
		perms.Extensions[extVerbs] = strings.Join(k.verbs, ",")
	}
	return perms, nil
}

// certificate checks a user certificate against the trusted CAs.
func (a *authorizer) certificate(meta ssh.ConnMetadata, cert *ssh.Certificate) (*ssh.Permissions, error) {
	ca, ok := a.cas[string(cert.SignatureKey.Marshal())]
	if !ok {
		return nil, fmt.Errorf("certificate %q: signed by %s, not a trusted CA", cert.KeyId, ssh.FingerprintSHA256(cert.SignatureKey))
	}
	checker := &ssh.CertChecker{
		IsUserAuthority:          func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), cert.SignatureKey.Marshal()) },
		SupportedCriticalOptions: []string{"source-address", forceCommand},
	}
	principal := User
	if ca.principals != nil {
		i := slices.IndexFunc(ca.principals, func(p string) bool { return slices.Contains(cert.ValidPrincipals, p) })
		if i < 0 {
			return nil, fmt.Errorf("certificate %q: no principal among %q", cert.KeyId, ca.principals)
		}
		principal = ca.principals[i]
	}
	if err := checker.CheckCert(principal, cert); err != nil {
		return nil, fmt.Errorf("certificate %q: %w", cert.KeyId, err)
	}
	return certPermissions(cert, ca)
}

// certPermissions builds the Permissions of a checked certificate: its
// critical options (source-address is enforced by x/crypto/ssh), its
// verbs@initos extension intersected with the CA's verbs= option.
func certPermissions(cert *ssh.Certificate, ca authCA) (*ssh.Permissions, error) {
	perms := &ssh.Permissions{
		CriticalOptions: map[string]string{},
		Extensions: map[string]string{extKey: fmt.Sprintf("cert %q serial %d of CA %s (key %s)",
			cert.KeyId, cert.Serial, ssh.FingerprintSHA256(cert.SignatureKey), ssh.FingerprintSHA256(cert.Key))},
	}
	for k, v := range cert.CriticalOptions {
		perms.CriticalOptions[k] = v
	}
	verbs := ca.verbs
	if v, ok := cert.Extensions[extVerbs]; ok {
		certVerbs, err := parseVerbList(v)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: extension %s: %w", cert.KeyId, extVerbs, err)
		}
		if verbs == nil {
			verbs = certVerbs
		} else {
			verbs = slices.DeleteFunc(slices.Clone(verbs), func(v string) bool { return !slices.Contains(certVerbs, v) })
		}
	}
	if verbs != nil {
		perms.Extensions[extVerbs] = strings.Join(verbs, ",")
	}
	return perms, nil
}

// identity is who authenticated, from the connection's Permissions.
func identity(p *ssh.Permissions) string {
	if p == nil || p.Extensions[extKey] == "" {
		return "unknown"
	}
	return p.Extensions[extKey]
}

// allowed reports whether the Permissions allow verb.
func allowed(p *ssh.Permissions, verb string) bool {
	if p == nil || p.Extensions[extKey] == "" {
		return false
	}
	list, restricted := p.Extensions[extVerbs]
	return !restricted || slices.Contains(strings.Split(list, ","), verb)
}
