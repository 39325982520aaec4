package dm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// Crypt is a dm-crypt target: Length sectors encrypted onto Device from
// sector Offset. Kernel: Documentation/admin-guide/device-mapper/dm-crypt.rst.
//
// The key is either Key (rendered as hex in the table) or KeyringKey (a
// key the caller already added to the kernel keyring; the table carries
// only its description, so the key never passes through the ioctl). The
// zero values of the optional fields are the kernel defaults.
type Crypt struct {
	Length     uint64      // sectors
	Cipher     string      // kernel cipher spec; "" means "aes-xts-plain64"
	Key        []byte      // raw key; exclusive with KeyringKey
	KeyringKey *KeyringKey // key in the kernel keyring; exclusive with Key
	IVOffset   uint64      // added to the sector number to form the IV
	Device     string      // path or "MAJOR:MINOR"
	Offset     uint64      // first sector of the ciphertext on Device

	AllowDiscards       bool   // allow_discards
	SameCPUCrypt        bool   // same_cpu_crypt
	SubmitFromCryptCPUs bool   // submit_from_crypt_cpus
	NoReadWorkqueue     bool   // no_read_workqueue
	NoWriteWorkqueue    bool   // no_write_workqueue
	IVLargeSectors      bool   // iv_large_sectors (IV counts SectorSize units)
	SectorSize          uint32 // sector_size:<bytes>; 0 or 512 means 512
}

// KeyringKey names a key in the kernel keyring, rendered in a crypt table
// as ":<Size>:<Type>:<Description>".
type KeyringKey struct {
	Size        int    // key size in bytes
	Type        string // key type; "" means "logon"
	Description string // key description, e.g. "cryptsetup:<uuid>-d0"
}

// DefaultCipher is the cipher a Crypt with an empty Cipher uses.
const DefaultCipher = "aes-xts-plain64"

// Type implements Target.
func (Crypt) Type() string { return "crypt" }

// Sectors implements Target.
func (c Crypt) Sectors() uint64 { return c.Length }

func (Crypt) sealed() {}

// Params implements Target: "<cipher> <key> <iv_offset> <device> <offset>
// [<#opt_params> <opt_params>]". The result contains the key in hex when
// Key is set: treat it as a secret.
func (c Crypt) Params() (string, error) {
	cipher := c.Cipher
	if cipher == "" {
		cipher = DefaultCipher
	}
	if err := checkWord("crypt cipher", cipher); err != nil {
		return "", err
	}
	key, err := c.keyParam()
	if err != nil {
		return "", err
	}
	if err := checkWord("crypt device", c.Device); err != nil {
		return "", err
	}
	opts, err := c.options()
	if err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s %s %d %s %d", cipher, key, c.IVOffset, c.Device, c.Offset)
	return withOptions(base, opts), nil
}

func (c Crypt) keyParam() (string, error) {
	switch {
	case c.KeyringKey != nil && len(c.Key) > 0:
		return "", errors.New("crypt key: both Key and KeyringKey are set")
	case c.KeyringKey != nil:
		return c.KeyringKey.param()
	case len(c.Key) > 0:
		return hex.EncodeToString(c.Key), nil
	}
	return "", errors.New("crypt key: neither Key nor KeyringKey is set")
}

func (k *KeyringKey) param() (string, error) {
	if k.Size <= 0 {
		return "", fmt.Errorf("crypt keyring key: size %d is not positive", k.Size)
	}
	typ := k.Type
	if typ == "" {
		typ = "logon"
	}
	switch typ {
	case "logon", "user", "encrypted", "trusted":
	default:
		return "", fmt.Errorf("crypt keyring key: type %q is not logon, user, encrypted or trusted", typ)
	}
	if err := checkWord("crypt keyring key description", k.Description); err != nil {
		return "", err
	}
	return ":" + strconv.Itoa(k.Size) + ":" + typ + ":" + k.Description, nil
}

func (c Crypt) options() ([]string, error) {
	var opts []string
	for _, o := range []struct {
		on   bool
		name string
	}{
		{c.AllowDiscards, "allow_discards"},
		{c.SameCPUCrypt, "same_cpu_crypt"},
		{c.SubmitFromCryptCPUs, "submit_from_crypt_cpus"},
		{c.NoReadWorkqueue, "no_read_workqueue"},
		{c.NoWriteWorkqueue, "no_write_workqueue"},
		{c.IVLargeSectors, "iv_large_sectors"},
	} {
		if o.on {
			opts = append(opts, o.name)
		}
	}
	switch s := c.SectorSize; {
	case s == 0 || s == SectorSize:
	case s < SectorSize || s > 4096 || s&(s-1) != 0:
		return nil, fmt.Errorf("crypt sector size %d: not a power of two in 512..4096", s)
	default:
		opts = append(opts, "sector_size:"+strconv.FormatUint(uint64(s), 10))
	}
	return opts, nil
}
