package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GPT partition types InitOS looks for (UEFI spec 2.10, 5.3.3; the
// Discoverable Partitions Specification for LUKS).
const (
	TypeESP  = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" // EFI System Partition
	TypeLUKS = "ca7d7ccb-63ed-4c53-861c-1742536059cc" // "InitOS LUKS": LUKS (DPS)
)

// ESP partition names of the A/B slots (the installer's GPT names).
const (
	NameESPA = "InitOS ESP A"
	NameESPB = "InitOS ESP B"
)

// GPTPartition is one used entry of a GUID partition table.
type GPTPartition struct {
	Number   int    // 1-based entry number: the kernel's partition number
	Type     string // lowercase GUID
	UUID     string // lowercase GUID (PARTUUID)
	Name     string
	FirstLBA uint64
	LastLBA  uint64
}

// gptHeader is the GPT header (UEFI spec 2.10, table 5.5), in field order.
type gptHeader struct {
	Signature      [8]byte
	Revision       uint32
	HeaderSize     uint32
	HeaderCRC32    uint32
	_              uint32
	MyLBA          uint64
	AlternateLBA   uint64
	FirstUsableLBA uint64
	LastUsableLBA  uint64
	DiskGUID       [16]byte
	EntriesLBA     uint64
	NumEntries     uint32
	EntrySize      uint32
	EntriesCRC32   uint32
}

// gptEntry is a partition entry (table 5.6); entries may be longer
// (EntrySize), the rest is reserved.
type gptEntry struct {
	Type       [16]byte
	UUID       [16]byte
	FirstLBA   uint64
	LastLBA    uint64
	Attributes uint64
	Name       [72]byte
}

const (
	gptHeaderSize = 92
	maxGPTEntries = 4096
	maxEntrySize  = 4096
)

// ReadGPT reads the GUID partition table of a disk of size bytes with the
// given logical sector size: the primary header at LBA 1, or, when that
// one is damaged, the backup at the last LBA. Only used entries (non-zero
// type) are returned.
func ReadGPT(r io.ReaderAt, size int64, sectorSize int) ([]GPTPartition, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return nil, fmt.Errorf("read GPT: sector size %d unsupported", sectorSize)
	}
	parts, err := readGPTAt(r, size, sectorSize, 1)
	if err == nil {
		return parts, nil
	}
	last := size/int64(sectorSize) - 1
	if backup, berr := readGPTAt(r, size, sectorSize, uint64(last)); berr == nil {
		return backup, nil
	}
	return nil, err
}

func readGPTAt(r io.ReaderAt, size int64, ss int, lba uint64) ([]GPTPartition, error) {
	blk := make([]byte, ss)
	if _, err := r.ReadAt(blk, int64(lba)*int64(ss)); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	var h gptHeader
	if _, err := binary.Decode(blk, binary.LittleEndian, &h); err != nil {
		return nil, fmt.Errorf("read GPT header: %w", err)
	}
	if err := h.check(blk, lba, size, ss); err != nil {
		return nil, fmt.Errorf("GPT header at LBA %d: %w", lba, err)
	}
	table := make([]byte, int(h.NumEntries)*int(h.EntrySize))
	if _, err := r.ReadAt(table, int64(h.EntriesLBA)*int64(ss)); err != nil {
		return nil, fmt.Errorf("read GPT entries at LBA %d: %w", h.EntriesLBA, err)
	}
	if crc32.ChecksumIEEE(table) != h.EntriesCRC32 {
		return nil, fmt.Errorf("GPT entries at LBA %d: CRC32 mismatch", h.EntriesLBA)
	}
	return parseEntries(table, int(h.EntrySize), h.LastUsableLBA)
}

// check validates the header of the block blk read at lba.
func (h *gptHeader) check(blk []byte, lba uint64, size int64, ss int) error {
	switch {
	case string(h.Signature[:]) != "EFI PART":
		return errors.New("no EFI PART signature")
	case h.HeaderSize < gptHeaderSize || int(h.HeaderSize) > ss:
		return fmt.Errorf("header size %d out of range", h.HeaderSize)
	case h.MyLBA != lba:
		return fmt.Errorf("header says it is at LBA %d", h.MyLBA)
	case h.NumEntries > maxGPTEntries || h.EntrySize < 128 || h.EntrySize > maxEntrySize || h.EntrySize%8 != 0:
		return fmt.Errorf("%d entries of %d bytes out of range", h.NumEntries, h.EntrySize)
	case h.EntriesLBA < 2 || (h.EntriesLBA*uint64(ss)+uint64(h.NumEntries)*uint64(h.EntrySize)) > uint64(size):
		return fmt.Errorf("entries at LBA %d beyond the disk", h.EntriesLBA)
	}
	hdr := bytes.Clone(blk[:h.HeaderSize])
	binary.LittleEndian.PutUint32(hdr[16:20], 0)
	if crc32.ChecksumIEEE(hdr) != h.HeaderCRC32 {
		return errors.New("header CRC32 mismatch")
	}
	return nil
}

func parseEntries(table []byte, entrySize int, lastUsable uint64) ([]GPTPartition, error) {
	var parts []GPTPartition
	for i := 0; i*entrySize < len(table); i++ {
		var e gptEntry
		if _, err := binary.Decode(table[i*entrySize:], binary.LittleEndian, &e); err != nil {
			return nil, err
		}
		if e.Type == ([16]byte{}) {
			continue
		}
		if e.FirstLBA > e.LastLBA || e.LastLBA > lastUsable {
			return nil, fmt.Errorf("GPT entry %d: LBAs %d-%d out of range", i+1, e.FirstLBA, e.LastLBA)
		}
		parts = append(parts, GPTPartition{Number: i + 1, Type: guidString(e.Type), UUID: guidString(e.UUID),
			Name: utf16Name(e.Name[:]), FirstLBA: e.FirstLBA, LastLBA: e.LastLBA})
	}
	return parts, nil
}

// guidString formats an on-disk GUID (first three fields little-endian).
func guidString(g [16]byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:4]),
		binary.LittleEndian.Uint16(g[4:6]), binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// utf16Name decodes a NUL-terminated UTF-16LE partition name.
func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD")
}
