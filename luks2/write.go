package luks2

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Device is what the header and keyslot code reads and writes: a block
// device or image file.
type Device interface {
	io.ReaderAt
	io.WriterAt
}

// syncer is implemented by *os.File.
type syncer interface{ Sync() error }

func syncDev(d Device) error {
	if s, ok := d.(syncer); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return nil
}

// encode returns the header area (binary header + JSON area) of one copy.
func (h *Header) encode(magic [6]byte, offset uint64) ([]byte, error) {
	json, err := encodeMetadata(h.Meta, int(h.Binary.HeaderSize-BinaryHeaderSize))
	if err != nil {
		return nil, err
	}
	bh := h.Binary
	bh.Magic, bh.HeaderOffset, bh.Checksum = magic, offset, [64]byte{}
	area := append(encodeBinary(&bh), json...)
	alg, _ := cstring("checksum_alg", bh.ChecksumAlg[:])
	sum, err := checksum(alg, area)
	if err != nil {
		return nil, err
	}
	copy(area[checksumOffset:], sum)
	return area, nil
}

// Write validates the metadata, bumps the seqid and writes both header
// copies: the secondary first, then the primary (see the package doc for
// why a crash in between is safe), syncing after each. It also repairs a
// damaged or stale copy.
func (h *Header) Write(d Device) error {
	if err := h.Meta.validate(h.Binary.HeaderSize); err != nil {
		return fmt.Errorf("write luks2 header: invalid metadata: %w", err)
	}
	next := *h
	next.Binary.SeqID++
	size := h.Binary.HeaderSize
	for _, c := range []struct {
		magic [6]byte
		off   uint64
	}{{magicSecondary, size}, {magicPrimary, 0}} {
		area, err := next.encode(c.magic, c.off)
		if err != nil {
			return fmt.Errorf("write luks2 header: %w", err)
		}
		if _, err := d.WriteAt(area, int64(c.off)); err != nil {
			return fmt.Errorf("write luks2 header at %d: %w", c.off, err)
		}
		if err := syncDev(d); err != nil {
			return fmt.Errorf("write luks2 header at %d: %w", c.off, err)
		}
	}
	h.Binary.SeqID = next.Binary.SeqID
	h.PrimaryErr, h.SecondaryErr = nil, nil
	return nil
}

// Backup returns the header region of d (both header copies and the
// keyslots area), as cryptsetup luksHeaderBackup stores it.
func (h *Header) Backup(d io.ReaderAt) ([]byte, error) {
	n := 2*h.Binary.HeaderSize + uint64(h.Meta.Config.KeyslotsSize)
	buf := make([]byte, n)
	if _, err := d.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("back up luks2 header: read %d bytes: %w", n, err)
	}
	return buf, nil
}

// BackupFile writes the header backup of the device at dev to a new file
// at out (temp file + rename; out must not exist).
func BackupFile(dev, out string) error {
	f, err := openFile(dev, false)
	if err != nil {
		return err
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return fmt.Errorf("back up %s: %w", dev, err)
	}
	b, err := h.Backup(f)
	if err != nil {
		return fmt.Errorf("back up %s: %w", dev, err)
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("back up %s: %s already exists", dev, out)
	}
	return writeFileAtomic(out, b)
}

// RestoreFile writes the header backup at backup onto the device at dev.
// The backup must hold a valid header; the device's current header (if
// any) must have the same UUID unless force is set. The keyslots area is
// written first, then the secondary header, then the primary one.
func RestoreFile(backup, dev string, force bool) error {
	b, err := os.ReadFile(backup)
	if err != nil {
		return fmt.Errorf("restore luks2 header: %w", err)
	}
	bh, err := ReadHeader(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("restore luks2 header from %s: %w", backup, err)
	}
	size := bh.Binary.HeaderSize
	if uint64(len(b)) != 2*size+uint64(bh.Meta.Config.KeyslotsSize) {
		return fmt.Errorf("restore luks2 header from %s: %d bytes, want %d", backup, len(b), 2*size+uint64(bh.Meta.Config.KeyslotsSize))
	}
	f, err := openFile(dev, true)
	if err != nil {
		return err
	}
	defer f.Close()
	if cur, err := ReadHeader(f); err == nil && cur.UUID() != bh.UUID() && !force {
		return fmt.Errorf("restore luks2 header to %s: device UUID %s differs from backup UUID %s", dev, cur.UUID(), bh.UUID())
	}
	for _, part := range [][2]uint64{{2 * size, uint64(len(b))}, {size, 2 * size}, {0, size}} {
		if _, err := f.WriteAt(b[part[0]:part[1]], int64(part[0])); err != nil {
			return fmt.Errorf("restore luks2 header to %s: %w", dev, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("restore luks2 header to %s: %w", dev, err)
		}
	}
	return nil
}

// openFile opens a device or image for reading (and writing).
func openFile(path string, write bool) (*os.File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("open luks2 device: %w", err)
	}
	return f, nil
}

// writeFileAtomic creates path with b via a temp file in the same
// directory, fsync and rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".luks2-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// randReader returns r, or crypto/rand when r is nil.
func randReader(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// randomBytes fills b from r (crypto/rand when nil).
func randomBytes(r io.Reader, b []byte) error {
	_, err := io.ReadFull(randReader(r), b)
	return err
}
