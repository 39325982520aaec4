package install

import (
	"fmt"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// The InitOS disk layout contract (BRIEF, "Contracts between parts").
const (
	NameESPA = "InitOS ESP A"
	NameESPB = "InitOS ESP B"
	NameLUKS = "InitOS LUKS"
	// TypeESP is the EFI System partition type.
	TypeESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// TypeLUKS is the Discoverable Partitions Specification's LUKS type.
	TypeLUKS = "CA7D7CCB-63ED-4C53-861C-1742536059CC"
	// PartESPA, PartESPB and PartLUKS are the partition numbers; with one
	// ESP, partition 2 stays empty so that LUKS is always partition 3.
	PartESPA = 1
	PartESPB = 2
	PartLUKS = 3
)

// alignBytes aligns partition starts and the LUKS end (1 MiB, as sgdisk
// and parted do; a LUKS2 data area in 4 KiB sectors needs at least 4 KiB).
const alignBytes = 1 << 20

// gptEntries is the size of a GPT partition entry array (128 x 128 bytes).
const gptEntries = 128 * 128

// Partition is one planned or found GPT partition.
type Partition struct {
	Number  int    `json:"number"`
	Name    string `json:"name"`
	Type    string `json:"type"`    // type GUID, upper case
	GUID    string `json:"guid"`    // unique partition GUID, upper case
	Start   uint64 `json:"start"`   // first LBA
	Sectors uint64 `json:"sectors"` // size in logical sectors
}

// Layout is the partition table of one disk.
type Layout struct {
	SectorSize int         `json:"sector_size"` // logical sector size in bytes
	DiskGUID   string      `json:"disk_guid"`
	Partitions []Partition `json:"partitions"`
}

// Part returns partition n, or nil.
func (l *Layout) Part(n int) *Partition {
	for i := range l.Partitions {
		if l.Partitions[i].Number == n {
			return &l.Partitions[i]
		}
	}
	return nil
}

// ESPs returns the ESP partitions, A first.
func (l *Layout) ESPs() []*Partition {
	var out []*Partition
	for _, n := range []int{PartESPA, PartESPB} {
		if p := l.Part(n); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Offset returns the byte offset and size of partition p.
func (l *Layout) Offset(p *Partition) (off, size int64) {
	return int64(p.Start) * int64(l.SectorSize), int64(p.Sectors) * int64(l.SectorSize)
}

// planLayout computes the layout of a disk of size bytes: ESP A (and B)
// of espSize from 1 MiB, then LUKS to the last usable sector, its end
// aligned down to 1 MiB. It fails when LUKS would be below minRoot.
func planLayout(size int64, sectorSize int, espSize, minRoot Size, single bool) (*Layout, error) {
	ss := int64(sectorSize)
	if ss < 512 || ss&(ss-1) != 0 || alignBytes%ss != 0 {
		return nil, fmt.Errorf("logical sector size %d is not supported", sectorSize)
	}
	total := size / ss
	lastUsable := total - 2 - (gptEntries+ss-1)/ss // backup entries + header
	l := &Layout{SectorSize: sectorSize}
	next := alignBytes / ss
	names := []string{NameESPA, NameESPB}
	if single {
		names = names[:1]
	}
	for i, name := range names {
		n := int64(espSize) / ss
		l.Partitions = append(l.Partitions, Partition{Number: PartESPA + i, Name: name, Type: TypeESP, Start: uint64(next), Sectors: uint64(n)})
		next += n
	}
	end := (lastUsable + 1) * ss / alignBytes * alignBytes / ss // exclusive, aligned
	luks := end - next
	if luks*ss < int64(minRoot) {
		need := Size(next*ss + int64(minRoot) + (2+gptEntries/ss)*ss + alignBytes)
		return nil, &TooSmallError{Size: Size(size), Need: need}
	}
	l.Partitions = append(l.Partitions, Partition{Number: PartLUKS, Name: NameLUKS, Type: TypeLUKS, Start: uint64(next), Sectors: uint64(luks)})
	return l, nil
}

// TooSmallError reports a disk smaller than the layout needs.
type TooSmallError struct{ Size, Need Size }

func (e *TooSmallError) Error() string {
	return fmt.Sprintf("disk is too small: %s, the layout needs at least %s", e.Size.Human(), e.Need.Human())
}

// sameGeometry reports whether found has the partitions of want (numbers,
// names, types, starts, sizes), ignoring unique GUIDs.
func sameGeometry(want, found *Layout) bool {
	if found == nil || want.SectorSize != found.SectorSize || len(want.Partitions) != len(found.Partitions) {
		return false
	}
	for _, w := range want.Partitions {
		f := found.Part(w.Number)
		if f == nil || f.Name != w.Name || !strings.EqualFold(f.Type, w.Type) || f.Start != w.Start || f.Sectors != w.Sectors {
			return false
		}
	}
	return true
}

// isInitOS reports whether a found table has the InitOS partitions (one
// or two ESPs by name and type, and the LUKS partition), whatever their
// sizes.
func isInitOS(l *Layout) bool {
	a, luks := l.Part(PartESPA), l.Part(PartLUKS)
	if a == nil || luks == nil || a.Name != NameESPA || luks.Name != NameLUKS ||
		!strings.EqualFold(a.Type, TypeESP) || !strings.EqualFold(luks.Type, TypeLUKS) {
		return false
	}
	b := l.Part(PartESPB)
	return len(l.Partitions) == 2 && b == nil || len(l.Partitions) == 3 && b != nil && b.Name == NameESPB && strings.EqualFold(b.Type, TypeESP)
}

// layoutFromGPT converts a go-diskfs table.
func layoutFromGPT(t *gpt.Table) *Layout {
	l := &Layout{SectorSize: t.LogicalSectorSize, DiskGUID: strings.ToUpper(t.GUID)}
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused || p.End < p.Start {
			continue
		}
		l.Partitions = append(l.Partitions, Partition{Number: p.Index, Name: p.Name, Type: strings.ToUpper(string(p.Type)),
			GUID: strings.ToUpper(p.GUID), Start: p.Start, Sectors: p.End - p.Start + 1})
	}
	return l
}

// toGPT converts l to a go-diskfs table (GUIDs must be set).
func (l *Layout) toGPT(physSectorSize int) *gpt.Table {
	t := &gpt.Table{LogicalSectorSize: l.SectorSize, PhysicalSectorSize: physSectorSize, ProtectiveMBR: true, GUID: l.DiskGUID}
	for _, p := range l.Partitions {
		t.Partitions = append(t.Partitions, &gpt.Partition{Index: p.Number, Start: p.Start, End: p.Start + p.Sectors - 1,
			Size: p.Sectors * uint64(l.SectorSize), Type: gpt.Type(p.Type), Name: p.Name, GUID: p.GUID})
	}
	return t
}

// String renders the layout as the plan shows it.
func (l *Layout) String() string {
	var b strings.Builder
	for _, p := range l.Partitions {
		off, size := l.Offset(&p)
		fmt.Fprintf(&b, "    %d  %-13s %10s at %s\n", p.Number, p.Name, Size(size).Human(), Size(off).Human())
	}
	return b.String()
}
