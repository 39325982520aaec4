package bootdisk

import (
	"crypto/rand"

	"initos/luks2"
)

// Volume is a LUKS2 volume of a test machine: where it is, its keys, and
// its header once enrolled.
type Volume struct {
	Disk, Part int    // disk index, partition number
	UUID       string // LUKS UUID
	Pass       []byte // keyslot 0 passphrase
	Key        []byte // the volume key (64 bytes: aes-xts-plain64, 512 bits)
	Header     []byte // the header region (LUKSDataOffset bytes), after SaveHeader
}

// NewVolume returns a volume description with a random volume key.
func NewVolume(disk, part int, uuid, pass string) *Volume {
	k := make([]byte, 64)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return &Volume{Disk: disk, Part: part, UUID: uuid, Pass: []byte(pass), Key: k}
}

// Format writes v's LUKS2 header on its disk.
func (v *Volume) Format(disks []*Disk) (*luks2.Header, error) {
	return disks[v.Disk].FormatLUKS(v.Part, v.UUID, v.Pass, v.Key)
}

// SaveHeader reads v's header region back from its disk (after the
// enrollment boot added tokens).
func (v *Volume) SaveHeader(disks []*Disk) error {
	d := disks[v.Disk]
	b, err := ReadRegion(d.Path, d.Parts[v.Part-1].Start, LUKSDataOffset)
	v.Header = b
	return err
}

// Install writes v's saved header into partition n of d and the root
// image img after it, encrypted with v's key: the volume, wherever it was
// enrolled, now lives there.
func (d *Disk) Install(n int, v *Volume, img string) error {
	if err := d.WriteAt(n, 0, v.Header); err != nil {
		return err
	}
	return d.EncryptInto(n, img, v.Key)
}

// MemDevice is a luks2.Device in memory (a saved header to edit).
type MemDevice struct{ B []byte }

// ReadAt implements io.ReaderAt.
func (m *MemDevice) ReadAt(p []byte, off int64) (int, error) { return copy(p, m.B[off:]), nil }

// WriteAt implements io.WriterAt.
func (m *MemDevice) WriteAt(p []byte, off int64) (int, error) { return copy(m.B[off:], p), nil }
