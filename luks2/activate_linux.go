package luks2

import (
	"fmt"
	"io"
	"os"
	"strings"

	"initos/dm"
	"initos/loop"
)

// ActivateOptions tunes a dm-crypt mapping.
type ActivateOptions struct {
	ReadOnly      bool
	AllowDiscards bool
}

// CryptTarget returns the dm-crypt target for segment 0 on the data device
// dev of size bytes, keyed with vk (cryptsetup's table: the segment cipher,
// iv_tweak as IV offset, the segment offset in 512-byte sectors, and
// sector_size when not 512; IVs count 512-byte sectors).
func (h *Header) CryptTarget(dev string, size uint64, vk []byte) (dm.Crypt, error) {
	if err := h.Unsupported(); err != nil {
		return dm.Crypt{}, fmt.Errorf("crypt target: %w", err)
	}
	s := h.Meta.Segments["0"]
	if s == nil {
		return dm.Crypt{}, fmt.Errorf("crypt target: no segment 0")
	}
	off := uint64(s.Offset)
	if size <= off {
		return dm.Crypt{}, fmt.Errorf("crypt target: device %s has %d bytes, not more than the data offset %d", dev, size, off)
	}
	length := size - off
	if s.Size != "dynamic" {
		n, _ := parseU64(s.Size)
		if n > length {
			return dm.Crypt{}, fmt.Errorf("crypt target: segment needs %d bytes, device %s has %d after the offset", n, dev, length)
		}
		length = n
	}
	length -= length % uint64(s.SectorSize)
	return dm.Crypt{
		Length:     length / dm.SectorSize,
		Cipher:     s.Encryption,
		Key:        vk,
		IVOffset:   uint64(s.IVTweak),
		Device:     dev,
		Offset:     off / dm.SectorSize,
		SectorSize: uint32(s.SectorSize),
	}, nil
}

// DMUUID is the device-mapper UUID cryptsetup gives an active volume:
// "CRYPT-LUKS2-<uuid without dashes>-<name>".
func (h *Header) DMUUID(name string) string {
	return "CRYPT-LUKS2-" + strings.ReplaceAll(h.UUID(), "-", "") + "-" + name
}

// Activate maps the data device at path (a block device, or a regular file
// attached to an autoclear loop device) as /dev/mapper/name with volume
// key vk, and returns the mapper path.
func (h *Header) Activate(name, path string, vk *Secret, o ActivateOptions) (string, error) {
	dev, size, cleanup, err := blockDevice(path, o.ReadOnly)
	if err != nil {
		return "", fmt.Errorf("activate %s: %w", name, err)
	}
	defer cleanup()
	t, err := h.CryptTarget(dev, size, vk.Bytes())
	if err != nil {
		return "", fmt.Errorf("activate %s: %w", name, err)
	}
	t.AllowDiscards = o.AllowDiscards
	node, err := dm.CreateDevice(name, h.DMUUID(name), o.ReadOnly, t)
	if err != nil {
		return "", fmt.Errorf("activate %s: %w", name, err)
	}
	return node, nil
}

// blockDevice returns a block device for path (attaching a regular file to
// an autoclear loop device, released by cleanup once the mapping holds it)
// and its size in bytes.
func blockDevice(path string, readOnly bool) (string, uint64, func(), error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, nil, err
	}
	cleanup := func() {}
	dev := path
	if st.Mode().IsRegular() {
		l, err := loop.Attach(path, loop.Config{ReadOnly: readOnly, Autoclear: true})
		if err != nil {
			return "", 0, nil, err
		}
		dev, cleanup = l.Path, func() { l.Close() }
	}
	f, err := os.Open(dev)
	if err != nil {
		cleanup()
		return "", 0, nil, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		cleanup()
		return "", 0, nil, fmt.Errorf("size of %s: %w", dev, err)
	}
	return dev, uint64(size), cleanup, nil
}

// Deactivate removes the mapping /dev/mapper/name.
func Deactivate(name string) error {
	if err := dm.RemoveDevice(name); err != nil {
		return fmt.Errorf("deactivate %s: %w", name, err)
	}
	return nil
}
