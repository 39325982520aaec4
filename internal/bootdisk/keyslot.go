package bootdisk

import (
	"os"

	"initos/luks2"
)

// AddPassphrase adds a keyslot opened by pass to the LUKS2 volume in
// partition n of d (key vk), with the same fast PBKDF2 as the TPM keyslots
// (a key file's content has full entropy too).
func (d *Disk) AddPassphrase(n int, vk, pass []byte) error {
	f, err := os.OpenFile(d.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	dev := region{f, d.Parts[n-1].Start}
	h, err := luks2.ReadHeader(dev)
	if err != nil {
		return err
	}
	_, err = h.AddKey(dev, vk, pass, luks2.KeyslotOptions{PBKDF: luks2.PBKDF{Type: "pbkdf2", Hash: "sha512", Iterations: 1000}})
	if err != nil {
		return err
	}
	return f.Sync()
}
