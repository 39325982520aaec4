package luks2

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrNoHeader is returned by ReadHeader when neither header copy is valid.
var ErrNoHeader = errors.New("no valid luks2 header")

// ErrStale marks a header copy that is valid but older (lower seqid) than
// the other copy: an interrupted write.
var ErrStale = errors.New("stale header copy")

// Header is a parsed LUKS2 header: the binary header of the copy in use
// and its JSON metadata.
type Header struct {
	Binary BinaryHeader
	Meta   *Metadata

	// PrimaryErr and SecondaryErr say why a copy was not used (nil: valid
	// and current). A damaged copy is repaired by the next Write.
	PrimaryErr, SecondaryErr error
}

// Damaged reports whether either header copy is invalid or stale.
func (h *Header) Damaged() bool { return h.PrimaryErr != nil || h.SecondaryErr != nil }

// MetadataSize returns the size of one header copy (binary + JSON area).
func (h *Header) MetadataSize() uint64 { return h.Binary.HeaderSize }

// UUID returns the volume UUID.
func (h *Header) UUID() string { s, _ := cstring("uuid", h.Binary.UUID[:]); return s }

// Label returns the volume label.
func (h *Header) Label() string { s, _ := cstring("label", h.Binary.Label[:]); return s }

// Subsystem returns the volume subsystem label.
func (h *Header) Subsystem() string { s, _ := cstring("subsystem", h.Binary.Subsystem[:]); return s }

// readCopy reads and fully validates the header copy at off (spec §2:
// magic, version, size, offset, checksum, then the JSON).
func readCopy(r io.ReaderAt, off int64, magic [6]byte) (*Header, error) {
	buf := make([]byte, BinaryHeaderSize)
	if _, err := r.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read binary header at %d: %w", off, err)
	}
	bh, err := decodeBinary(buf, magic, off)
	if err != nil {
		return nil, err
	}
	area := make([]byte, bh.HeaderSize)
	if _, err := r.ReadAt(area, off); err != nil {
		return nil, fmt.Errorf("read %d-byte header area at %d: %w", bh.HeaderSize, off, err)
	}
	alg, _ := cstring("checksum_alg", bh.ChecksumAlg[:])
	sum, err := checksum(alg, area)
	if err != nil {
		return nil, err
	}
	if string(sum) != string(bh.Checksum[:len(sum)]) {
		return nil, fmt.Errorf("%s checksum mismatch", alg)
	}
	m, err := decodeMetadata(area[BinaryHeaderSize:])
	if err != nil {
		return nil, err
	}
	if err := m.validate(bh.HeaderSize); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return &Header{Binary: *bh, Meta: m}, nil
}

// readSecondary finds the secondary copy: at hint (the primary's size) if
// known, else at each valid metadata size, like cryptsetup does when the
// primary is unreadable.
func readSecondary(r io.ReaderAt, hint uint64) (*Header, error) {
	if hint != 0 {
		return readCopy(r, int64(hint), magicSecondary)
	}
	var first error
	for n := uint64(DefaultMetadataSize); n <= MaxMetadataSize; n *= 2 {
		h, err := readCopy(r, int64(n), magicSecondary)
		if err == nil {
			return h, nil
		}
		if first == nil || n == DefaultMetadataSize {
			first = fmt.Errorf("not found at any valid offset (at %d: %w)", n, err)
		}
	}
	return nil, first
}

// ReadHeader reads both header copies, validates each completely, and
// returns the valid one with the highest seqid. It reports the problems of
// the other copy in PrimaryErr/SecondaryErr; if neither copy is valid the
// error wraps ErrNoHeader and names the failed check of each.
func ReadHeader(r io.ReaderAt) (*Header, error) {
	p, perr := readCopy(r, 0, magicPrimary)
	var hint uint64
	if perr == nil {
		hint = p.Binary.HeaderSize
	}
	s, serr := readSecondary(r, hint)
	switch {
	case perr != nil && serr != nil:
		if err := otherVersion(r); err != nil {
			return nil, fmt.Errorf("read luks2 header: %w", err)
		}
		return nil, fmt.Errorf("read luks2 header: %w: primary: %v; secondary: %v", ErrNoHeader, perr, serr)
	case perr != nil:
		s.PrimaryErr = fmt.Errorf("primary header: %w", perr)
		return s, nil
	case serr != nil:
		p.SecondaryErr = fmt.Errorf("secondary header at %d: %w", hint, serr)
		return p, nil
	case s.Binary.SeqID > p.Binary.SeqID:
		s.PrimaryErr = fmt.Errorf("primary header: %w: seqid %d, secondary has %d", ErrStale, p.Binary.SeqID, s.Binary.SeqID)
		return s, nil
	case s.Binary.SeqID < p.Binary.SeqID:
		p.SecondaryErr = fmt.Errorf("secondary header: %w: seqid %d, primary has %d", ErrStale, s.Binary.SeqID, p.Binary.SeqID)
		return p, nil
	case !sameMetadata(p.Meta, s.Meta):
		p.SecondaryErr = fmt.Errorf("secondary header: metadata differs from the primary's with the same seqid %d", p.Binary.SeqID)
	}
	return p, nil
}

// otherVersion recognizes a LUKS header of another version than 2 (LUKS1
// has the same magic and a big-endian version 1 after it), so that the
// error says what it is instead of "no valid header".
func otherVersion(r io.ReaderAt) error {
	var b [8]byte
	if _, err := r.ReadAt(b[:], 0); err != nil || [6]byte(b[:6]) != magicPrimary {
		return nil
	}
	switch v := binary.BigEndian.Uint16(b[6:]); v {
	case version2:
		return nil
	case 1:
		return fmt.Errorf("LUKS1 header: LUKS version 1: %w (cryptsetup convert --type luks2 converts it)", ErrUnsupported)
	default:
		return fmt.Errorf("LUKS header version %d: %w", v, ErrUnsupported)
	}
}

// ReadHeaderFile reads the header of the device or image at path.
func ReadHeaderFile(path string) (*Header, error) {
	f, err := openFile(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := ReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// sameMetadata compares two parsed metadata objects by their encoding.
func sameMetadata(a, b *Metadata) bool {
	ea, err1 := json.Marshal(a)
	eb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}
