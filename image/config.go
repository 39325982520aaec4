package image

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// ConfigName is the host-root config file, in the top level (subvolume
// id 5) of the btrfs filesystem.
const ConfigName = "initos.conf"

// MaxConfigSize bounds a host-root config file.
const MaxConfigSize = 64 << 10

// ErrConfig reports a malformed host-root config file.
var ErrConfig = errors.New("bad host-root config")

// Config is the host-root config the initrd reads to choose the
// subvolume it switches into. The file is UTF-8 text of "key=value"
// lines; blank lines and lines starting with '#' are ignored; keys are
// [a-z][a-z0-9_.-]*, each at most once; values run to the end of the
// line, with no control characters.
//
//	root=images/roots/host    # required: the root subvolume, relative to the top level
//	image=sha256:...          # optional: the image digest it was made from
//
// Other keys are kept in Extra (later versions may add some), and written
// back sorted.
type Config struct {
	Root  string
	Image string
	Extra map[string]string
}

// ParseConfig parses a host-root config file.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrConfig, len(b), MaxConfigSize)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrConfig)
	}
	c := &Config{}
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
		switch k {
		case "root":
			c.Root = v
		case "image":
			c.Image = v
		default:
			if c.Extra == nil {
				c.Extra = map[string]string{}
			}
			c.Extra[k] = v
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) validate() error {
	if c.Root == "" {
		return fmt.Errorf("%w: no root= line", ErrConfig)
	}
	if p, err := CleanPath(c.Root); err != nil || p != c.Root {
		return fmt.Errorf("%w: root %q is not a clean relative path", ErrConfig, c.Root)
	}
	for k, v := range c.Extra {
		if !validKey(k) || k == "root" || k == "image" || strings.IndexFunc(v, isControl) >= 0 || v != strings.TrimSpace(v) {
			return fmt.Errorf("%w: extra key %q", ErrConfig, k)
		}
	}
	if strings.IndexFunc(c.Image, isControl) >= 0 || c.Image != strings.TrimSpace(c.Image) {
		return fmt.Errorf("%w: image %q", ErrConfig, c.Image)
	}
	return nil
}

// Marshal encodes c in the config file format.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("# InitOS host root; read by the initrd.\n")
	fmt.Fprintf(&b, "root=%s\n", c.Root)
	if c.Image != "" {
		fmt.Fprintf(&b, "image=%s\n", c.Image)
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
