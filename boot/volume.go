package boot

import (
	"strings"

	"initos/luks2"
)

// Volume is a LUKS2 volume of the InitOS GPT type and what became of it.
type Volume struct {
	Partition
	Header *luks2.Header
	UUID   string // the LUKS UUID
	Name   string // the dm-crypt name: "luks-" + UUID, as systemd names it
	Mapper string // /dev/mapper/NAME once open
	State  string // found, unlocked, open, failed
	Err    error

	key    *luks2.Secret // the volume key between unlock and activation
	manual bool          // unlocked with a key from the control plane (kept for reseal until handover)
}

// Volume states.
const (
	VolumeFound    = "found"
	VolumeUnlocked = "unlocked"
	VolumeOpen     = "open"
	VolumeFailed   = "failed"
)

func (v *Volume) status() VolumeStatus {
	s := VolumeStatus{Device: v.Device, UUID: v.UUID, Name: v.Name, State: v.State}
	if v.Err != nil {
		s.Error = v.Err.Error()
	}
	return s
}

func (v *Volume) fail(err error) error {
	v.State, v.Err = VolumeFailed, err
	return err
}

// wipe destroys the volume key, if still held.
func (v *Volume) wipe() {
	if v.key != nil {
		v.key.Destroy()
		v.key = nil
	}
}

// cryptModules returns the kernel modules dm-crypt needs for a LUKS2
// cipher spec such as "aes-xts-plain64": the cipher and the mode as crypto
// API aliases ("crypto-aes", "crypto-xts"). The kernel would request them
// through a usermode modprobe the initrd does not have.
func cryptModules(spec string) []string {
	f := strings.Split(spec, "-")
	mods := []string{"crypto-" + f[0]}
	if len(f) > 1 {
		mods = append(mods, "crypto-"+f[1], "crypto-"+f[1]+"("+f[0]+")")
	}
	return mods
}

// volumeName is the dm-crypt name of a LUKS UUID, as systemd-cryptsetup's
// generator names volumes found by UUID.
func volumeName(uuid string) string { return "luks-" + uuid }
