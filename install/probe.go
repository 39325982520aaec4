package install

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"initos/luks2"
)

// ContentKind classifies what a disk holds.
type ContentKind string

// Content kinds.
const (
	// Blank: no partition table, no signature, zeros in the first and last MiB.
	Blank ContentKind = "blank"
	// Partial: an InitOS layout whose volume is not complete (an install
	// that was interrupted): the installer continues it.
	Partial ContentKind = "initos-partial"
	// Complete: an InitOS install whose volume is marked complete.
	Complete ContentKind = "initos-complete"
	// Foreign: anything else; written only with Config.Wipe.
	Foreign ContentKind = "foreign"
)

// Content is what Probe found on a disk.
type Content struct {
	Kind   ContentKind `json:"kind"`
	What   string      `json:"what"`             // human description ("GPT with 2 partitions", "ext4 filesystem")
	Layout *Layout     `json:"layout,omitempty"` // the partition table, when there is a GPT
	Token  *Token      `json:"token,omitempty"`  // the install token of an InitOS volume
}

// probeSpan is how much of each end of a disk must be zero for it to count
// as blank.
const probeSpan = 1 << 20

// Probe classifies the content of a disk of size bytes read through r.
func Probe(r io.ReaderAt, size int64, sectorSize int) (Content, error) {
	if why := gptInsane(r, size, sectorSize); why != "" {
		return Content{Kind: Foreign, What: "GPT partition table " + why}, nil
	}
	if l := readGPT(r, size, sectorSize); l != nil {
		return probeGPT(r, l)
	}
	head, tail, err := readEnds(r, size)
	if err != nil {
		return Content{}, err
	}
	if what := mbrPartitions(head); what != "" {
		return Content{Kind: Foreign, What: what}, nil
	}
	if what := signature(head); what != "" {
		return Content{Kind: Foreign, What: what}, nil
	}
	if i := bytes.IndexFunc(head, func(r rune) bool { return r != 0 }); i >= 0 {
		return Content{Kind: Foreign, What: fmt.Sprintf("unrecognized data at byte %d (not blank)", i)}, nil
	}
	if i := bytes.IndexFunc(tail, func(r rune) bool { return r != 0 }); i >= 0 {
		return Content{Kind: Foreign, What: fmt.Sprintf("unrecognized data at byte %d (not blank)", size-int64(len(tail))+int64(i))}, nil
	}
	return Content{Kind: Blank, What: "blank"}, nil
}

// readEnds reads the first and last probeSpan bytes (fewer on small disks).
func readEnds(r io.ReaderAt, size int64) (head, tail []byte, err error) {
	n := min(int64(probeSpan), size)
	head = make([]byte, n)
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read the start of the disk: %w", err)
	}
	tail = make([]byte, n)
	if _, err := r.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read the end of the disk: %w", err)
	}
	return head, tail, nil
}

// probeGPT classifies a disk with a GPT: InitOS (partial or complete by
// the install token) or foreign.
func probeGPT(r io.ReaderAt, l *Layout) (Content, error) {
	c := Content{Layout: l}
	if !isInitOS(l) {
		c.Kind, c.What = Foreign, describeGPT(l)
		return c, nil
	}
	off, size := l.Offset(l.Part(PartLUKS))
	h, err := luks2.ReadHeader(io.NewSectionReader(r, off, size))
	if err != nil {
		c.Kind, c.What = Partial, "InitOS layout, no LUKS2 volume yet (install in progress)"
		return c, nil
	}
	c.Token = findToken(h)
	switch {
	case c.Token == nil:
		c.Kind, c.What = Foreign, fmt.Sprintf("InitOS layout with LUKS2 volume %s that no installer marked (no %s token)", h.UUID(), TokenType)
	case c.Token.State == StateComplete:
		c.Kind, c.What = Complete, fmt.Sprintf("InitOS install %s, complete (LUKS2 %s)", c.Token.InstallID, h.UUID())
	default:
		c.Kind, c.What = Partial, fmt.Sprintf("InitOS install %s in progress (LUKS2 %s)", c.Token.InstallID, h.UUID())
	}
	return c, nil
}

func describeGPT(l *Layout) string {
	names := make([]string, len(l.Partitions))
	for i, p := range l.Partitions {
		names[i] = fmt.Sprintf("%d %q", p.Number, p.Name)
	}
	return fmt.Sprintf("GPT partition table with %d partitions (%s)", len(l.Partitions), strings.Join(names, ", "))
}

// maxGPTEntries bounds a GPT partition entry array (UEFI 2.10, 5.3.2: at
// least 16 KiB; 128 entries of 128 bytes in practice).
const maxGPTEntries = 1 << 20

// gptInsane checks the primary and backup GPT headers before go-diskfs
// reads the entry array they describe (it allocates entries x size bytes
// as the header says): it returns why a header is implausible, or "".
func gptInsane(r io.ReaderAt, size int64, sectorSize int) string {
	ss := int64(sectorSize)
	for _, lba := range []int64{1, size/ss - 1} {
		var h [92]byte
		if lba < 1 || lba*ss+92 > size {
			continue
		}
		if _, err := r.ReadAt(h[:], lba*ss); err != nil || string(h[:8]) != "EFI PART" {
			continue
		}
		n, esz := binary.LittleEndian.Uint32(h[80:]), binary.LittleEndian.Uint32(h[84:])
		if esz < 128 || esz > 4096 || uint64(n)*uint64(esz) > maxGPTEntries {
			return fmt.Sprintf("at LBA %d with an implausible entry array (%d entries of %d bytes)", lba, n, esz)
		}
	}
	return ""
}

// readGPT returns the disk's GPT (primary, else backup) or nil.
func readGPT(r io.ReaderAt, size int64, sectorSize int) *Layout {
	if gptInsane(r, size, sectorSize) != "" {
		return nil
	}
	t, err := gpt.Read(&readerFile{r: r, size: size}, sectorSize, sectorSize)
	if err != nil {
		return nil
	}
	return layoutFromGPT(t)
}

// mbrPartitions describes a classic MBR with partition entries ("" if
// none; a protective MBR without a valid GPT counts too).
func mbrPartitions(head []byte) string {
	if len(head) < 512 || head[510] != 0x55 || head[511] != 0xaa {
		return ""
	}
	var types []string
	for i := 0; i < 4; i++ {
		e := head[446+16*i : 446+16*(i+1)]
		if e[4] != 0 && binary.LittleEndian.Uint32(e[12:]) != 0 {
			types = append(types, fmt.Sprintf("0x%02x", e[4]))
		}
	}
	if len(types) == 0 {
		return ""
	}
	return fmt.Sprintf("MBR partition table with %d partitions (types %s)", len(types), strings.Join(types, ", "))
}

// signatures are the magic numbers of what a disk may hold without a
// partition table, at their offsets (as blkid's probes look for them).
var signatures = []struct {
	off   int
	magic string
	what  string
}{
	{0, "LUKS\xba\xbe", "LUKS volume"},
	{0, "SKUL\xba\xbe", "LUKS2 secondary header"},
	{0, "hsqs", "squashfs filesystem"},
	{0, "XFSB", "XFS filesystem"},
	{0, "verity\x00\x00", "dm-verity hash tree"},
	{3, "NTFS    ", "NTFS filesystem"},
	{3, "EXFAT   ", "exFAT filesystem"},
	{54, "FAT1", "FAT filesystem"},
	{82, "FAT32   ", "FAT32 filesystem"},
	{512, "LABELONE", "LVM2 physical volume"},
	{1024 + 56, "\x53\xef", "ext2/3/4 filesystem"},
	{1024, "\x10\x20\xf5\xf2", "F2FS filesystem"},
	{4096, "\xfc\x4e\x2b\xa9", "Linux RAID member (md 1.2)"},
	{4096 - 10, "SWAPSPACE2", "Linux swap"},
	{4096 - 10, "SWAP-SPACE", "Linux swap"},
	{32769, "CD001", "ISO 9660 filesystem"},
	{65536 + 64, "_BHRfS_M", "btrfs filesystem"},
}

// signature names the first signature found in head ("" if none).
func signature(head []byte) string {
	for _, s := range signatures {
		if s.off+len(s.magic) <= len(head) && string(head[s.off:s.off+len(s.magic)]) == s.magic {
			return s.what
		}
	}
	return ""
}

// readerFile adapts an io.ReaderAt of known size to go-diskfs's
// backend.File (it reads with ReadAt and finds the size with Seek).
type readerFile struct {
	r    io.ReaderAt
	size int64
	off  int64
}

func (f *readerFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *readerFile) Read(p []byte) (int, error) {
	n, err := f.r.ReadAt(p, f.off)
	f.off += int64(n)
	return n, err
}
func (f *readerFile) Close() error               { return nil }
func (f *readerFile) Stat() (fs.FileInfo, error) { return sizeInfo(f.size), nil }
func (f *readerFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += f.off
	case io.SeekEnd:
		off += f.size
	}
	if off < 0 {
		return 0, fmt.Errorf("seek to %d: negative offset", off)
	}
	f.off = off
	return off, nil
}

type sizeInfo int64

func (s sizeInfo) Name() string       { return "disk" }
func (s sizeInfo) Size() int64        { return int64(s) }
func (s sizeInfo) Mode() fs.FileMode  { return 0o600 }
func (s sizeInfo) ModTime() time.Time { return time.Time{} }
func (s sizeInfo) IsDir() bool        { return false }
func (s sizeInfo) Sys() any           { return nil }
