package bootconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Path is where the config lives inside the initrd.
const Path = "/etc/initos/initrd.json"

// Version is the schema version this package reads and writes.
const Version = 1

// MaxSize bounds the config file.
const MaxSize = 64 << 10

// Mode is what the initrd does.
type Mode string

// Modes.
const (
	ModeBoot    Mode = "boot"    // unlock the disks and switch into the host root
	ModeInstall Mode = "install" // the installer / recovery image: no btrfs, no switch_root
)

// Defaults of the optional fields.
const (
	DefaultInit           = "/sbin/init"
	DefaultFailureTimeout = 5 * time.Minute
	DefaultDeviceTimeout  = 30 * time.Second
	DefaultSSHPort        = 22
	DefaultMeasurePCR     = 15
)

// Config is the signed initrd configuration. Fields with `omitempty` are
// optional; their zero value means the default.
type Config struct {
	Version         int    `json:"version"`            // must be Version
	Mode            Mode   `json:"mode"`               // ModeBoot or ModeInstall
	SecurityVersion uint64 `json:"security_version"`   // anti-rollback counter of this build
	BuildID         string `json:"build_id,omitempty"` // free text naming the build
	// Kernel is the kernel release the initrd was built for (`uname -r`);
	// the initrd refuses to run on another kernel. Empty: not checked.
	Kernel string `json:"kernel,omitempty"`
	// EarlyModules are loaded, with their dependencies, from the cpio's
	// /lib/modules/<release> before anything else (storage, vfat,
	// dm-verity, squashfs, loop, efivarfs...).
	EarlyModules []string     `json:"early_modules,omitempty"`
	ModulesImage ModulesImage `json:"modules_image"`
	Unlock       Unlock       `json:"unlock"`
	Root         Root         `json:"root"`
	Control      Control      `json:"control"`
	// FailureTimeoutSec is how long a failed boot waits (serving the
	// control plane) before it reboots: 0 means DefaultFailureTimeout, -1
	// never reboots.
	FailureTimeoutSec int      `json:"failure_timeout_sec,omitempty"`
	Watchdog          Watchdog `json:"watchdog"`
}

// ModulesImage is the kernel modules and firmware image on the ESP: a
// squashfs with its dm-verity hash tree appended at HashOffset, opened
// read-only through dm-verity with RootHash. Empty (RootHash "") means no
// image: every module comes from the cpio.
type ModulesImage struct {
	// File is the path of the image on the ESP, '/'-separated, relative to
	// the ESP root, e.g. "initos/modules-6.1.0-57-amd64.sqfs".
	File          string `json:"file,omitempty"`
	RootHash      string `json:"root_hash,omitempty"`      // hex
	Salt          string `json:"salt,omitempty"`           // hex; "" means no salt
	HashAlgorithm string `json:"hash_algorithm,omitempty"` // "" means sha256
	DataSize      int64  `json:"data_size,omitempty"`      // bytes covered, a multiple of 4096
	// HashOffset is where the verity superblock (then the tree) starts in
	// the file, 4096-aligned and not before DataSize.
	HashOffset int64 `json:"hash_offset,omitempty"`
}

// Unlock is the unlock policy of the LUKS2 volumes.
type Unlock struct {
	// DeviceTimeoutSec bounds the wait for the disks (ESP, LUKS volumes):
	// 0 means DefaultDeviceTimeout.
	DeviceTimeoutSec int `json:"device_timeout_sec,omitempty"`
	// UUIDs, when set, restricts the volumes to open to these LUKS UUIDs;
	// otherwise every partition of the InitOS LUKS GPT type is opened.
	UUIDs []string `json:"uuids,omitempty"`
	// AllowUnbound accepts volumes without an InitOS binding token (tied
	// to this machine's TPM under the signed boot policy): for volumes
	// enrolled by other tools. It gives up the refusal of substituted
	// volumes whose TPM token an attacker forged.
	AllowUnbound bool `json:"allow_unbound,omitempty"`
	// MeasurePCR is the PCR each opened volume is measured into; 0 means
	// DefaultMeasurePCR (15, as systemd-cryptsetup).
	MeasurePCR int `json:"measure_pcr,omitempty"`
}

// Root holds defaults for the host root; initos.conf on the encrypted
// disk and then the kernel command line override them.
type Root struct {
	Init  string `json:"init,omitempty"`  // "" means DefaultInit
	Flags string `json:"flags,omitempty"` // extra btrfs mount options
}

// Control configures the SSH control plane served when a boot fails or in
// install mode.
type Control struct {
	Port           int      `json:"port,omitempty"`            // 0 means DefaultSSHPort
	AuthorizedKeys []string `json:"authorized_keys,omitempty"` // authorized_keys lines
	UserCAKeys     []string `json:"user_ca_keys,omitempty"`    // CA public keys for user certificates
	Network        Network  `json:"network"`
}

// Network modes of the control plane.
const (
	NetworkDHCP   = "dhcp"
	NetworkStatic = "static"
	NetworkNone   = "none"
)

// Network is the control plane's network.
type Network struct {
	Mode      string   `json:"mode,omitempty"`      // "" means NetworkDHCP
	Interface string   `json:"interface,omitempty"` // "" means every wired interface
	Address   string   `json:"address,omitempty"`   // CIDR, static only
	Gateway   string   `json:"gateway,omitempty"`   // static only, optional
	DNS       []string `json:"dns,omitempty"`       // static only, optional
}

// Watchdog arms a hardware watchdog for the time the initrd runs.
type Watchdog struct {
	Device     string `json:"device,omitempty"`      // "" disables, e.g. "/dev/watchdog0"
	TimeoutSec int    `json:"timeout_sec,omitempty"` // 0 keeps the device's timeout
	// KeepRunning leaves it armed across switch_root, for the root's init
	// to take over; otherwise it is stopped before the handover.
	KeepRunning bool `json:"keep_running,omitempty"`
}

// New returns a valid Config with the defaults: boot mode, version 1.
func New() *Config { return &Config{Version: Version, Mode: ModeBoot} }

// FailureTimeout returns how long a failed boot waits before rebooting;
// negative means forever.
func (c *Config) FailureTimeout() time.Duration {
	switch {
	case c.FailureTimeoutSec < 0:
		return -1
	case c.FailureTimeoutSec == 0:
		return DefaultFailureTimeout
	}
	return time.Duration(c.FailureTimeoutSec) * time.Second
}

// DeviceTimeout returns the bound of the wait for disks.
func (u *Unlock) DeviceTimeout() time.Duration {
	if u.DeviceTimeoutSec == 0 {
		return DefaultDeviceTimeout
	}
	return time.Duration(u.DeviceTimeoutSec) * time.Second
}

// PCR returns the PCR opened volumes are measured into.
func (u *Unlock) PCR() int {
	if u.MeasurePCR == 0 {
		return DefaultMeasurePCR
	}
	return u.MeasurePCR
}

// InitPath returns the default init of the root.
func (r *Root) InitPath() string {
	if r.Init == "" {
		return DefaultInit
	}
	return r.Init
}

// SSHPort returns the control plane's port.
func (c *Control) SSHPort() int {
	if c.Port == 0 {
		return DefaultSSHPort
	}
	return c.Port
}

// Enabled reports whether the config names a modules image.
func (m *ModulesImage) Enabled() bool { return m.RootHash != "" }

// Marshal validates c and encodes it as indented JSON with a final newline.
// Equal configs encode to equal bytes.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("bootconfig: marshal: %w", err)
	}
	return b.Bytes(), nil
}
