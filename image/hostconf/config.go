package hostconf

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"unicode/utf8"
)

// Name is the file name of the host-root config in the btrfs top level.
const Name = "initos.conf"

// MaxSize bounds a host-root config file.
const MaxSize = 64 << 10

// ErrConfig reports a malformed host-root config file.
var ErrConfig = errors.New("bad host-root config")

// Slots are the A/B slot names (lowercase, as in root.a=).
const (
	SlotA = "a"
	SlotB = "b"
)

// Config is a parsed host-root config. The zero value is not valid: it
// needs a root.
type Config struct {
	Root      string            // root=: root subvolume path, relative to the top level
	RootA     string            // root.a=: root of slot A, if it differs
	RootB     string            // root.b=: root of slot B, if it differs
	RootFlags string            // rootflags=: extra mount options of the root
	Init      string            // init=: the root's init, an absolute path
	Image     string            // image=: the image the root was made from
	Extra     map[string]string // other keys, for later versions
}

// known maps each key Config has a field for to that field.
func (c *Config) known() map[string]*string {
	return map[string]*string{"root": &c.Root, "root.a": &c.RootA, "root.b": &c.RootB,
		"rootflags": &c.RootFlags, "init": &c.Init, "image": &c.Image}
}

// keyOrder is the order Marshal writes the known keys in.
var keyOrder = []string{"root", "root.a", "root.b", "rootflags", "init", "image"}

// Parse parses a host-root config file.
func Parse(b []byte) (*Config, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrConfig, len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrConfig)
	}
	c := &Config{}
	fields := c.known()
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: line %d: no '='", ErrConfig, i+1)
		case !validKey(k):
			return nil, fmt.Errorf("%w: line %d: invalid key %q", ErrConfig, i+1, k)
		case seen[k]:
			return nil, fmt.Errorf("%w: line %d: key %q repeated", ErrConfig, i+1, k)
		case strings.IndexFunc(v, isControl) >= 0:
			return nil, fmt.Errorf("%w: line %d: control character in value of %q", ErrConfig, i+1, k)
		}
		seen[k] = true
		if f := fields[k]; f != nil {
			*f = v
			continue
		}
		if c.Extra == nil {
			c.Extra = map[string]string{}
		}
		c.Extra[k] = v
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks c: a root for every slot, clean relative root paths, an
// absolute init, mount options without spaces or subvol=, well-formed
// extra keys.
func (c *Config) Validate() error {
	if c.Root == "" && (c.RootA == "" || c.RootB == "") {
		return fmt.Errorf("%w: no root= line (needed unless root.a= and root.b= are both set)", ErrConfig)
	}
	for _, k := range []string{"root", "root.a", "root.b"} {
		if v := *c.known()[k]; v != "" && !cleanRelative(v) {
			return fmt.Errorf("%w: %s %q is not a clean relative path", ErrConfig, k, v)
		}
	}
	if c.Init != "" && (!path.IsAbs(c.Init) || path.Clean(c.Init) != c.Init) {
		return fmt.Errorf("%w: init %q is not a clean absolute path", ErrConfig, c.Init)
	}
	if err := checkFlags(c.RootFlags); err != nil {
		return err
	}
	for k, v := range c.known() {
		if strings.IndexFunc(*v, isControl) >= 0 || *v != strings.TrimSpace(*v) {
			return fmt.Errorf("%w: %s %q", ErrConfig, k, *v)
		}
	}
	for k, v := range c.Extra {
		if !validKey(k) || c.known()[k] != nil || strings.IndexFunc(v, isControl) >= 0 || v != strings.TrimSpace(v) {
			return fmt.Errorf("%w: extra key %q", ErrConfig, k)
		}
	}
	return nil
}

func checkFlags(flags string) error {
	if strings.ContainsAny(flags, " \t") {
		return fmt.Errorf("%w: rootflags %q contains spaces", ErrConfig, flags)
	}
	for _, o := range strings.Split(flags, ",") {
		if k, _, _ := strings.Cut(o, "="); k == "subvol" || k == "subvolid" {
			return fmt.Errorf("%w: rootflags: %s= is chosen by root=, not by rootflags=", ErrConfig, k)
		}
	}
	return nil
}

// RootFor returns the root subvolume of slot ("a", "b", or "" when the
// boot has no slot): root.<slot> when set, else root.
func (c *Config) RootFor(slot string) (string, error) {
	var r string
	switch slot {
	case SlotA:
		r = c.RootA
	case SlotB:
		r = c.RootB
	case "":
	default:
		return "", fmt.Errorf("%w: unknown slot %q (want a or b)", ErrConfig, slot)
	}
	if r == "" {
		r = c.Root
	}
	if r == "" {
		return "", fmt.Errorf("%w: no root.%s= and no root= line", ErrConfig, slot)
	}
	return r, nil
}

// Marshal encodes c in the config file format: the known keys first, in a
// fixed order, then the extra keys sorted.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# InitOS host root; read by the initrd.\n")
	fields := c.known()
	for _, k := range keyOrder {
		if v := *fields[k]; v != "" {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	keys := make([]string, 0, len(c.Extra))
	for k := range c.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, c.Extra[k])
	}
	return b.Bytes(), nil
}

// cleanRelative reports whether p is a relative path in canonical form:
// no leading '/', no empty, "." or ".." component, no NUL.
func cleanRelative(p string) bool {
	if p == "" || len(p) > 4096 || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || len(c) > 255 {
			return false
		}
	}
	return true
}

func validKey(k string) bool {
	if k == "" || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }
