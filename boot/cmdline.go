package boot

import (
	"fmt"
	"strings"

	"initos/bootconfig"
)

// Cmdline is the kernel command line as the kernel splits it: words
// separated by spaces, a double-quoted part may hold spaces (the quotes
// are removed), "key=value" or a bare "key".
type Cmdline struct {
	words []string
}

// ParseCmdline splits a kernel command line (/proc/cmdline).
func ParseCmdline(s string) *Cmdline {
	c := &Cmdline{}
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range strings.TrimRight(s, "\n\x00") {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case (r == ' ' || r == '\t' || r == '\n') && !quoted:
			if inWord {
				c.words = append(c.words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		c.words = append(c.words, w.String())
	}
	return c
}

// Get returns the value of the last "key=value" word for key (the kernel
// lets the last one win) and whether there was one; a bare "key" counts,
// with the value "".
func (c *Cmdline) Get(key string) (string, bool) {
	val, found := "", false
	for _, w := range c.words {
		k, v, _ := strings.Cut(w, "=")
		if k == key {
			val, found = v, true
		}
	}
	return val, found
}

// Words returns the words of the command line.
func (c *Cmdline) Words() []string { return append([]string(nil), c.words...) }

// Parameters InitOS reads from the (signed) kernel command line.
const (
	paramMode      = "initos.mode"  // boot | install: overrides the config's mode
	paramInit      = "init"         // the root's init: overrides initos.conf and the config
	paramRootFlags = "rootflags"    // the root's mount options: likewise
	paramSlot      = "initos.slot"  // a | b: overrides the slot found from the ESP
	paramDebug     = "initos.debug" // log more
)

// Settings are the values the flow takes from the config and the command
// line: the command line (signed in the UKI like the config) wins.
type Settings struct {
	Mode      bootconfig.Mode
	Init      string // "" until the host config is read
	RootFlags string // likewise
	Slot      string
	Debug     bool
}

// settings combines the config and the command line.
func settings(c *bootconfig.Config, cmd *Cmdline) (Settings, error) {
	s := Settings{Mode: c.Mode}
	if m, ok := cmd.Get(paramMode); ok {
		switch bootconfig.Mode(m) {
		case bootconfig.ModeBoot, bootconfig.ModeInstall:
			s.Mode = bootconfig.Mode(m)
		default:
			return s, fmt.Errorf("kernel command line: %s=%q: want %s or %s", paramMode, m, bootconfig.ModeBoot, bootconfig.ModeInstall)
		}
	}
	if v, ok := cmd.Get(paramSlot); ok {
		if v != "a" && v != "b" {
			return s, fmt.Errorf("kernel command line: %s=%q: want a or b", paramSlot, v)
		}
		s.Slot = v
	}
	if v, ok := cmd.Get(paramInit); ok {
		if !strings.HasPrefix(v, "/") {
			return s, fmt.Errorf("kernel command line: %s=%q: want an absolute path", paramInit, v)
		}
		s.Init = v
	}
	s.RootFlags, _ = cmd.Get(paramRootFlags)
	_, s.Debug = cmd.Get(paramDebug)
	return s, nil
}
