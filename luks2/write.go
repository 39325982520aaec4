package luks2

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"

	"initos/internal/atomicfile"
)

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

// encodeBoth validates the metadata and returns both copies with the next
// seqid: secondary first, then primary, in write order.
func (h *Header) encodeBoth() ([2][]byte, error) {
	if err := h.Meta.validate(h.Binary.HeaderSize); err != nil {
		return [2][]byte{}, fmt.Errorf("invalid metadata: %w", err)
	}
	next := *h
	next.Binary.SeqID++
	size := h.Binary.HeaderSize
	sec, err := next.encode(magicSecondary, size)
	if err != nil {
		return [2][]byte{}, err
	}
	prim, err := next.encode(magicPrimary, 0)
	return [2][]byte{sec, prim}, err
}

// Write validates the metadata, bumps the seqid and writes both header
// copies, each one whole: the secondary first, then the primary (see the
// package doc for why a crash in between is safe), syncing after each. It
// also repairs a damaged or stale copy. A header with features this
// package cannot round-trip (Unsupported, keyslots of other types) is
// refused with ErrUnsupported rather than rewritten without them.
func (h *Header) Write(d Device) error {
	if err := h.checkWritable(); err != nil {
		return fmt.Errorf("write luks2 header: %w", err)
	}
	copies, err := h.encodeBoth()
	if err != nil {
		return fmt.Errorf("write luks2 header: %w", err)
	}
	for i, off := range []uint64{h.Binary.HeaderSize, 0} {
		if _, err := d.WriteAt(copies[i], int64(off)); err != nil {
			return fmt.Errorf("write luks2 header at %d: %w", off, err)
		}
		if err := syncDev(d); err != nil {
			return fmt.Errorf("write luks2 header at %d: %w", off, err)
		}
	}
	h.Binary.SeqID++
	h.PrimaryErr, h.SecondaryErr = nil, nil
	return nil
}

// regionSize is the size of the header region: both copies and the
// keyslots area (what luksHeaderBackup saves).
func (h *Header) regionSize() uint64 {
	return 2*h.Binary.HeaderSize + uint64(h.Meta.Config.KeyslotsSize)
}

// BackupTo copies the header region of d (both header copies and the
// keyslots area, at most 136 MiB) to w, as cryptsetup luksHeaderBackup
// stores it. The region must lie within d; it is streamed, not held in
// memory.
func (h *Header) BackupTo(w io.Writer, d io.ReaderAt) error {
	n := h.regionSize()
	if err := checkRegion(d, "header region", 0, n); err != nil {
		return fmt.Errorf("back up luks2 header: %w", err)
	}
	if _, err := io.Copy(w, io.NewSectionReader(d, 0, int64(n))); err != nil {
		return fmt.Errorf("back up luks2 header: %w", err)
	}
	return nil
}

// BackupFile writes the header backup of the device at dev to a new file
// at out (mode 0600: it holds the keyslots; out must not exist), through
// package atomicfile.
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
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("back up %s: %s already exists", dev, out)
	}
	return atomicfile.Write(out, 0o600, func(w io.Writer) error { return h.BackupTo(w, f) })
}

// RestoreFile writes the header backup at backup onto the device at dev,
// opened exclusively (see OpenExclusive). The backup must hold a valid
// header and be exactly its header region; the device's current header
// (if any) must have the same UUID unless force is set. The keyslots area
// is written first, then the secondary header, then the primary one,
// syncing after each, streamed from the file.
func RestoreFile(backup, dev string, force bool) error {
	b, err := os.Open(backup)
	if err != nil {
		return fmt.Errorf("restore luks2 header: %w", err)
	}
	defer b.Close()
	bh, err := ReadHeader(b)
	if err != nil {
		return fmt.Errorf("restore luks2 header from %s: %w", backup, err)
	}
	size, n := bh.Binary.HeaderSize, bh.regionSize()
	if got, _ := deviceSize(b); got != n {
		return fmt.Errorf("restore luks2 header from %s: %d bytes, want the %d-byte header region", backup, got, n)
	}
	f, err := OpenExclusive(dev)
	if err != nil {
		return fmt.Errorf("restore luks2 header: %w", err)
	}
	defer f.Close()
	if err := checkRegion(f, "header region", 0, n); err != nil {
		return fmt.Errorf("restore luks2 header to %s: %w", dev, err)
	}
	if cur, err := ReadHeader(f); err == nil && cur.UUID() != bh.UUID() && !force {
		return fmt.Errorf("restore luks2 header to %s: device UUID %s differs from backup UUID %s", dev, cur.UUID(), bh.UUID())
	}
	for _, part := range [][2]uint64{{2 * size, n}, {size, 2 * size}, {0, size}} {
		src := io.NewSectionReader(b, int64(part[0]), int64(part[1]-part[0]))
		if _, err := io.Copy(io.NewOffsetWriter(f, int64(part[0])), src); err != nil {
			return fmt.Errorf("restore luks2 header to %s: %w", dev, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("restore luks2 header to %s: %w", dev, err)
		}
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
