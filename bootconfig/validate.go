package bootconfig

import (
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// Bounds of list lengths and string sizes.
const (
	maxModules  = 512
	maxKeys     = 256
	maxKeyLine  = 16 << 10
	maxUUIDs    = 64
	maxTimeout  = 7 * 24 * 3600
	maxSaltSize = 256
)

// Validate checks every field and returns an ErrInvalid error naming the
// first bad one.
func (c *Config) Validate() error {
	checks := []func() error{c.checkHead, c.checkModules, c.ModulesImage.check,
		c.Unlock.check, c.Root.check, c.Control.check, c.checkTimeouts, c.Watchdog.check}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) checkHead() error {
	switch {
	case c.Version == 0:
		return invalid("version", "missing (this initrd reads version %d)", Version)
	case c.Version != Version:
		return invalid("version", "%d is not supported (this initrd reads version %d)", c.Version, Version)
	case c.Mode == "":
		return invalid("mode", "missing: want %q or %q", ModeBoot, ModeInstall)
	case c.Mode != ModeBoot && c.Mode != ModeInstall:
		return invalid("mode", "%q: want %q or %q", c.Mode, ModeBoot, ModeInstall)
	case !printable(c.BuildID, 256):
		return invalid("build_id", "%q: at most 256 printable characters", c.BuildID)
	case c.Kernel != "" && !token(c.Kernel, 128, "/"):
		return invalid("kernel", "%q is not a kernel release", c.Kernel)
	}
	return nil
}

func (c *Config) checkModules() error {
	if len(c.EarlyModules) > maxModules {
		return invalid("early_modules", "%d names, at most %d", len(c.EarlyModules), maxModules)
	}
	for i, m := range c.EarlyModules {
		if !token(m, 256, "/") {
			return invalid(indexed("early_modules", i), "%q is not a module name or alias", m)
		}
	}
	return nil
}

func (m *ModulesImage) check() error {
	const p = "modules_image"
	if *m == (ModulesImage{}) {
		return nil
	}
	switch {
	case m.RootHash == "":
		return invalid(p+".root_hash", "missing (file, sizes or salt are set)")
	case m.HashAlgorithm != "" && m.HashAlgorithm != "sha256":
		return invalid(p+".hash_algorithm", "%q unsupported: sha256 only", m.HashAlgorithm)
	case !hexOfLen(m.RootHash, 32):
		return invalid(p+".root_hash", "%q: want 64 hex digits (sha256)", m.RootHash)
	case len(m.Salt) > 2*maxSaltSize || !hexOfLen(m.Salt, len(m.Salt)/2):
		return invalid(p+".salt", "%q: want at most %d bytes in hex", m.Salt, maxSaltSize)
	case !cleanRelative(m.File):
		return invalid(p+".file", "%q: want a relative path on the ESP without . or .. components", m.File)
	case m.DataSize <= 0 || m.DataSize%4096 != 0:
		return invalid(p+".data_size", "%d: want a positive multiple of 4096", m.DataSize)
	case m.HashOffset < m.DataSize || m.HashOffset%4096 != 0:
		return invalid(p+".hash_offset", "%d: want a multiple of 4096, not before data_size %d", m.HashOffset, m.DataSize)
	}
	return nil
}

func (u *Unlock) check() error {
	switch {
	case u.DeviceTimeoutSec < 0 || u.DeviceTimeoutSec > maxTimeout:
		return invalid("unlock.device_timeout_sec", "%d: want 0 (default) to %d", u.DeviceTimeoutSec, maxTimeout)
	case u.MeasurePCR != 0 && !measurablePCR(u.MeasurePCR):
		return invalid("unlock.measure_pcr", "%d: want one of 8-10, 12-16, 23 (PCR 11 holds the boot phases)", u.MeasurePCR)
	case len(u.UUIDs) > maxUUIDs:
		return invalid("unlock.uuids", "%d entries, at most %d", len(u.UUIDs), maxUUIDs)
	}
	seen := map[string]bool{}
	for i, id := range u.UUIDs {
		if !isUUID(id) {
			return invalid(indexed("unlock.uuids", i), "%q is not a UUID", id)
		}
		if seen[strings.ToLower(id)] {
			return invalid(indexed("unlock.uuids", i), "%q repeated", id)
		}
		seen[strings.ToLower(id)] = true
	}
	return nil
}

func measurablePCR(p int) bool { return p >= 8 && p <= 16 && p != 11 || p == 23 }

func (r *Root) check() error {
	switch {
	case r.Init != "" && (!path.IsAbs(r.Init) || path.Clean(r.Init) != r.Init || !printable(r.Init, 4096)):
		return invalid("root.init", "%q: want a clean absolute path", r.Init)
	case !token(r.Flags, 1024, ""):
		return invalid("root.flags", "%q: want comma-separated mount options without spaces", r.Flags)
	}
	for _, o := range strings.Split(r.Flags, ",") {
		if k, _, _ := strings.Cut(o, "="); k == "subvol" || k == "subvolid" {
			return invalid("root.flags", "%s= is chosen by initos.conf, not by the initrd config", k)
		}
	}
	return nil
}

func (c *Control) check() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return invalid("control.port", "%d: want 0 (default %d) to 65535", c.Port, DefaultSSHPort)
	case len(c.AuthorizedKeys) > maxKeys:
		return invalid("control.authorized_keys", "%d keys, at most %d", len(c.AuthorizedKeys), maxKeys)
	case len(c.UserCAKeys) > maxKeys:
		return invalid("control.user_ca_keys", "%d keys, at most %d", len(c.UserCAKeys), maxKeys)
	}
	for i, k := range c.AuthorizedKeys {
		if !authorizedKeyLine(k) {
			return invalid(indexed("control.authorized_keys", i), "not an authorized_keys line ([options] TYPE BASE64 [comment])")
		}
	}
	for i, k := range c.UserCAKeys {
		if f := strings.Fields(k); len(f) < 2 || !publicKey(f[0], f[1]) || len(k) > maxKeyLine {
			return invalid(indexed("control.user_ca_keys", i), "not a public key (TYPE BASE64 [comment])")
		}
	}
	return c.Network.check()
}

func (n *Network) check() error {
	const p = "control.network"
	switch n.Mode {
	case "", NetworkDHCP, NetworkNone:
		if n.Address != "" || n.Gateway != "" || len(n.DNS) > 0 {
			return invalid(p, "address, gateway and dns are for mode %q only", NetworkStatic)
		}
	case NetworkStatic:
		if _, err := netip.ParsePrefix(n.Address); err != nil {
			return invalid(p+".address", "%q: want an address with its prefix length (10.0.0.2/24)", n.Address)
		}
		if _, err := netip.ParseAddr(n.Gateway); n.Gateway != "" && err != nil {
			return invalid(p+".gateway", "%q is not an IP address", n.Gateway)
		}
		for i, d := range n.DNS {
			if _, err := netip.ParseAddr(d); err != nil {
				return invalid(indexed(p+".dns", i), "%q is not an IP address", d)
			}
		}
	default:
		return invalid(p+".mode", "%q: want %s, %s or %s", n.Mode, NetworkDHCP, NetworkStatic, NetworkNone)
	}
	if n.Interface != "" && (!token(n.Interface, 15, "/") || n.Interface == "." || n.Interface == "..") {
		return invalid(p+".interface", "%q is not an interface name", n.Interface)
	}
	return nil
}

func (c *Config) checkTimeouts() error {
	if c.FailureTimeoutSec < -1 || c.FailureTimeoutSec > maxTimeout {
		return invalid("failure_timeout_sec", "%d: want -1 (never reboot), 0 (default) or up to %d", c.FailureTimeoutSec, maxTimeout)
	}
	return nil
}

func (w *Watchdog) check() error {
	switch {
	case w.Device == "" && (w.TimeoutSec != 0 || w.KeepRunning):
		return invalid("watchdog", "timeout_sec and keep_running need a device")
	case w.Device != "" && (!strings.HasPrefix(w.Device, "/dev/") || path.Clean(w.Device) != w.Device || !token(w.Device, 256, "")):
		return invalid("watchdog.device", "%q: want a path under /dev/", w.Device)
	case w.TimeoutSec < 0 || w.TimeoutSec > 3600:
		return invalid("watchdog.timeout_sec", "%d: want 0 (device default) to 3600", w.TimeoutSec)
	}
	return nil
}

// printable reports whether s has at most max bytes and no control
// characters.
func printable(s string, max int) bool {
	return len(s) <= max && strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0
}

// token reports whether s is printable, has no space, no character of
// forbidden, and at most max bytes (the empty string is a token).
func token(s string, max int, forbidden string) bool {
	return printable(s, max) && !strings.ContainsAny(s, " "+forbidden)
}

func hexOfLen(s string, n int) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == n && strings.ToLower(s) == s
}

func cleanRelative(p string) bool {
	return p != "" && token(p, 255, "\\") && !path.IsAbs(p) && path.Clean(p) == p && p != "." &&
		!strings.HasPrefix(p, "../") && p != ".."
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", r):
			return false
		}
	}
	return true
}

// authorizedKeyLine checks the shape of an authorized_keys line: optional
// options, then a key type and its base64 blob whose first string is the
// same type.
func authorizedKeyLine(line string) bool {
	if len(line) > maxKeyLine || !printable(line, maxKeyLine) {
		return false
	}
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if publicKey(f[i], f[i+1]) {
			return true
		}
	}
	return false
}

// publicKey reports whether blob is base64 of an SSH wire-format public
// key whose type string is typ.
func publicKey(typ, blob string) bool {
	b, err := base64.StdEncoding.DecodeString(blob)
	if err != nil || len(b) < 4 {
		return false
	}
	n := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	return n == len(typ) && n <= len(b)-4 && string(b[4:4+n]) == typ
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
