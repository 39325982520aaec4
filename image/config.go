package image

import "initos/image/hostconf"

// ConfigName is the host-root config file, in the top level (subvolume
// id 5) of the btrfs filesystem.
const ConfigName = hostconf.Name

// MaxConfigSize bounds a host-root config file.
const MaxConfigSize = hostconf.MaxSize

// ErrConfig reports a malformed host-root config file.
var ErrConfig = hostconf.ErrConfig

// Config is the host-root config the initrd reads to choose the subvolume
// it switches into: root= (per A/B slot root.a=/root.b=), rootflags=,
// init=, image=, and extra keys (see package initos/image/hostconf, where
// the format lives so that the initrd reads it without linking this
// package's registry client).
type Config = hostconf.Config

// ParseConfig parses a host-root config file.
func ParseConfig(b []byte) (*Config, error) { return hostconf.Parse(b) }
