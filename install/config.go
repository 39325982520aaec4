package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"initos/internal/boundedfile"
	"io"
	"path/filepath"
	"strings"
)

// Config is what to install where: the disks, the boot artifacts, the root
// image, the keys and the policies. It is the JSON of `initos install
// --config install.json` (flags override it); the zero value of every
// field means its default. Paths are relative to the config file's
// directory (LoadConfig resolves them).
type Config struct {
	// Disks are the targets: /dev paths, /dev/disk/by-id paths or their
	// names ("virtio-disk1", computed from sysfs when udev made none), or
	// "auto": every disk that is blank or an InitOS install in progress,
	// not in use, not removable, big enough.
	Disks []string `json:"disks,omitempty"`
	// Wipe allows named disks holding partitions, filesystems or other data.
	Wipe bool `json:"wipe,omitempty"`
	// Yes is the consent to write the disks of the printed plan.
	Yes bool `json:"yes,omitempty"`
	// Force installs with Secure Boot off (the TPM policy then binds a PCR 7
	// that a Secure Boot boot will not reproduce).
	Force bool `json:"force,omitempty"`

	// ESPSize is the size of each ESP (default 500 MiB).
	ESPSize Size `json:"esp_size,omitempty"`
	// SingleESP makes one ESP per disk (slot A only; recovery from USB).
	SingleESP bool `json:"single_esp,omitempty"`
	// MinRootSize is the smallest LUKS partition accepted (default 1 GiB).
	MinRootSize Size `json:"min_root_size,omitempty"`

	// UKI is the signed UKI; Modules the modules image (squashfs with its
	// verity tree appended). Artifacts is a directory holding both (one
	// *.efi, one modules-*.sqfs), used for whichever is not given.
	UKI       string `json:"uki,omitempty"`
	Modules   string `json:"modules,omitempty"`
	Artifacts string `json:"artifacts,omitempty"`
	// ModulesRootHash is the expected verity root hash (hex) of the
	// modules image; empty: computed from the image.
	ModulesRootHash string `json:"modules_root_hash,omitempty"`

	// Image is the root image: REF, oci:DIR or docker-archive:FILE.
	Image string `json:"image,omitempty"`
	// Platform selects from a multi-platform image (default: this machine).
	Platform string `json:"platform,omitempty"`
	// RootName names the root subvolume images/roots/NAME (default "host").
	RootName string `json:"root_name,omitempty"`

	SecureBoot  SecureBootConfig  `json:"secure_boot,omitzero"`
	TPM         TPMConfig         `json:"tpm,omitzero"`
	RecoveryKey RecoveryKeyConfig `json:"recovery_key,omitzero"`

	// EFIVars is the efivarfs mount (default /sys/firmware/efi/efivars).
	EFIVars string `json:"efivars,omitempty"`
	// NoBootEntries leaves the firmware's Boot#### and BootOrder alone.
	NoBootEntries bool `json:"no_boot_entries,omitempty"`
}

// SecureBootConfig names the owner's Secure Boot keys.
type SecureBootConfig struct {
	// Keys is a directory made by `initos keys create`: PK.auth, KEK.auth
	// and db.auth are enrolled when the firmware is in setup mode; db.crt
	// is what the UKI's signature must verify against.
	Keys string `json:"keys,omitempty"`
	// DBCert is a PEM file of certificates the UKI must verify against
	// (default: Keys/db.crt, else the firmware's db).
	DBCert string `json:"db_cert,omitempty"`
}

// TPMConfig is the TPM2 unlock policy of the volumes.
type TPMConfig struct {
	// Disable enrolls no TPM token: the volumes open with the recovery key
	// only.
	Disable bool `json:"disable,omitempty"`
	// Device is the TPM: a device path or swtpm:path=SOCKET
	// (default /dev/tpmrm0).
	Device string `json:"device,omitempty"`
	// PCRs are bound by value, in systemd's syntax (default "7+15:sha256=" +
	// 64 zeros: PCR 7 as it is now, PCR 15 all-zero).
	PCRs string `json:"pcrs,omitempty"`
	// PublicKey is the PEM key of the signed PCR policy (default: the
	// UKI's .pcrpkey section); PublicKeyPCRs the PCRs it signs (default 11).
	PublicKey     string `json:"public_key,omitempty"`
	PublicKeyPCRs string `json:"public_key_pcrs,omitempty"`
	// Signature is the running UKI's signed PCR 11 policy, as systemd-stub
	// passes it to the initrd (default /.extra/tpm2-pcr-signature.json).
	// With it the volumes get their initos-binding token (enroll.Bind);
	// without it (not booted from a signed InitOS UKI) they are left
	// unbound, and the installed initrd opens them only with
	// unlock.allow_unbound.
	Signature string `json:"signature,omitempty"`
}

// DefaultPCRSignature is where systemd-stub leaves the UKI's .pcrsig.
const DefaultPCRSignature = "/.extra/tpm2-pcr-signature.json"

// RecoveryKeyConfig says where the recovery key goes. It is printed once
// unless Hide, and written to File when set.
type RecoveryKeyConfig struct {
	File string `json:"file,omitempty"`
	Hide bool   `json:"hide,omitempty"`
}

// Defaults.
const (
	DefaultESPSize     = 500 << 20
	DefaultMinRootSize = 1 << 30
	DefaultRootName    = "host"
	DefaultEFIVars     = "/sys/firmware/efi/efivars"
	// MaxConfigSize bounds an install config file.
	MaxConfigSize = 1 << 20
)

// ErrConfig reports an invalid install config.
var ErrConfig = errors.New("invalid install config")

// ParseConfig parses an install config (JSON; unknown fields are errors).
// Relative paths stay relative: see LoadConfig.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrConfig, len(b), MaxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrConfig)
	}
	return c, nil
}

// LoadConfig reads and parses an install config file and makes its
// relative paths relative to the file's directory.
func LoadConfig(path string) (*Config, error) {
	c, err := boundedfile.Read("load install config", path, MaxConfigSize, ParseConfig)
	if err != nil {
		return nil, err
	}
	c.Resolve(filepath.Dir(path))
	return c, nil
}

// Resolve makes the relative file paths of c relative to dir.
func (c *Config) Resolve(dir string) {
	for _, p := range []*string{&c.UKI, &c.Modules, &c.Artifacts, &c.SecureBoot.Keys,
		&c.SecureBoot.DBCert, &c.TPM.PublicKey, &c.RecoveryKey.File} {
		*p = resolvePath(dir, *p)
	}
	if rest, ok := strings.CutPrefix(c.Image, "oci:"); ok {
		c.Image = "oci:" + resolvePath(dir, rest)
	} else if rest, ok := strings.CutPrefix(c.Image, "docker-archive:"); ok {
		c.Image = "docker-archive:" + resolvePath(dir, rest)
	}
}

func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.ESPSize == 0 {
		c.ESPSize = DefaultESPSize
	}
	if c.MinRootSize == 0 {
		c.MinRootSize = DefaultMinRootSize
	}
	if c.RootName == "" {
		c.RootName = DefaultRootName
	}
	if c.EFIVars == "" {
		c.EFIVars = DefaultEFIVars
	}
	return c
}

// validate checks what can be checked without touching the machine.
func (c *Config) validate() error {
	switch {
	case len(c.Disks) == 0:
		return fmt.Errorf("%w: no target disk (disks, or \"auto\")", ErrConfig)
	case c.Image == "":
		return fmt.Errorf("%w: no root image (image)", ErrConfig)
	case c.UKI == "" && c.Artifacts == "":
		return fmt.Errorf("%w: no UKI (uki, or artifacts)", ErrConfig)
	case c.Modules == "" && c.Artifacts == "":
		return fmt.Errorf("%w: no modules image (modules, or artifacts)", ErrConfig)
	case c.ESPSize < minESPSize:
		return fmt.Errorf("%w: esp_size %s is below the FAT32 minimum of %s", ErrConfig, c.ESPSize, Size(minESPSize))
	case c.ESPSize%(1<<20) != 0:
		return fmt.Errorf("%w: esp_size %s is not a whole number of MiB", ErrConfig, c.ESPSize)
	case c.RecoveryKey.Hide && c.RecoveryKey.File == "":
		return fmt.Errorf("%w: recovery_key.hide without recovery_key.file would lose the recovery key", ErrConfig)
	case strings.ContainsAny(c.RootName, "/\x00") || c.RootName == "." || c.RootName == ".." || strings.HasPrefix(c.RootName, "."):
		return fmt.Errorf("%w: root_name %q is not a plain name", ErrConfig, c.RootName)
	}
	for _, d := range c.Disks {
		if d == "auto" && len(c.Disks) > 1 {
			return fmt.Errorf("%w: disks: \"auto\" cannot be combined with named disks", ErrConfig)
		}
		if d == "auto" && c.Wipe {
			return fmt.Errorf("%w: disks: \"auto\" never wipes; name the disks to wipe", ErrConfig)
		}
	}
	return nil
}

// minESPSize: FAT32 needs 65525 clusters; with go-diskfs's 512-byte
// clusters below 260 MiB that is about 33 MiB.
const minESPSize = 36 << 20
