package install

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testDiskSize = 600 << 20

// testDisk makes a sparse disk image file and returns it open.
func testDisk(t *testing.T, size int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeInitOSGPT writes an InitOS layout with fresh GUIDs to f.
func writeInitOSGPT(t *testing.T, f *os.File, size int64, single bool) *Layout {
	t.Helper()
	l, err := planLayout(size, 512, 40<<20, 200<<20, single)
	if err != nil {
		t.Fatal(err)
	}
	p := &Plan{Disks: []*PlannedDisk{{Disk: &Disk{}, Layout: l}}}
	if err := p.assignGUIDs(randReader); err != nil {
		t.Fatal(err)
	}
	if err := l.toGPT(512).Write(f, size); err != nil {
		t.Fatal(err)
	}
	return l
}

// writeVolume writes a LUKS2 volume with token tok (nil: none) on the
// LUKS partition of l in f.
func writeVolume(t *testing.T, f *os.File, l *Layout, tok *Token) {
	t.Helper()
	vk, err := newVolumeKey()
	if err != nil {
		t.Fatal(err)
	}
	defer vk.Destroy()
	mem, h, err := stageVolume(vk, "test-recovery", &Token{State: StatePending, InstallID: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil {
		if err := h.RemoveToken(mem, tokenIDs(h)[0]); err != nil {
			t.Fatal(err)
		}
	} else if tok.State == StateComplete {
		if err := markComplete(mem, h, tok); err != nil {
			t.Fatal(err)
		}
	}
	off, _ := l.Offset(l.Part(PartLUKS))
	if _, err := f.WriteAt(mem.Bytes(), off); err != nil {
		t.Fatal(err)
	}
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(t *testing.T, f *os.File)
		kind ContentKind
		what string
	}{
		{"blank", func(*testing.T, *os.File) {}, Blank, "blank"},
		{"byte in the middle", func(t *testing.T, f *os.File) { f.WriteAt([]byte{9}, 300000) }, Foreign, "unrecognized data at byte 300000"},
		{"byte at the end", func(t *testing.T, f *os.File) { f.WriteAt([]byte{9}, testDiskSize-5) }, Foreign, "at byte 629145595"},
		{"ext4", func(t *testing.T, f *os.File) { f.WriteAt([]byte{0x53, 0xef}, 1080) }, Foreign, "ext2/3/4 filesystem"},
		{"btrfs", func(t *testing.T, f *os.File) { f.WriteAt([]byte("_BHRfS_M"), 65536+64) }, Foreign, "btrfs filesystem"},
		{"luks", func(t *testing.T, f *os.File) { f.WriteAt([]byte("LUKS\xba\xbe"), 0) }, Foreign, "LUKS volume"},
		{"swap", func(t *testing.T, f *os.File) { f.WriteAt([]byte("SWAPSPACE2"), 4086) }, Foreign, "Linux swap"},
		{"mbr", func(t *testing.T, f *os.File) {
			b := make([]byte, 512)
			b[446+4], b[446+12], b[510], b[511] = 0x83, 8, 0x55, 0xaa
			f.WriteAt(b, 0)
		}, Foreign, "MBR partition table with 1 partitions (types 0x83)"},
		{"foreign gpt", func(t *testing.T, f *os.File) {
			l := writeInitOSGPT(t, f, testDiskSize, false)
			l.Partitions[0].Name = "EFI"
			l.toGPT(512).Write(f, testDiskSize)
		}, Foreign, `GPT partition table with 3 partitions (1 "EFI", 2 "InitOS ESP B", 3 "InitOS LUKS")`},
		{"initos, no volume", func(t *testing.T, f *os.File) { writeInitOSGPT(t, f, testDiskSize, false) }, Partial, "no LUKS2 volume yet"},
		{"initos single esp", func(t *testing.T, f *os.File) { writeInitOSGPT(t, f, testDiskSize, true) }, Partial, "no LUKS2 volume yet"},
		{"initos pending", func(t *testing.T, f *os.File) {
			writeVolume(t, f, writeInitOSGPT(t, f, testDiskSize, false), &Token{State: StatePending})
		}, Partial, "InitOS install x in progress"},
		{"initos complete", func(t *testing.T, f *os.File) {
			writeVolume(t, f, writeInitOSGPT(t, f, testDiskSize, false), &Token{State: StateComplete, InstallID: "y"})
		}, Complete, "InitOS install y, complete"},
		{"initos, volume without token", func(t *testing.T, f *os.File) {
			writeVolume(t, f, writeInitOSGPT(t, f, testDiskSize, false), nil)
		}, Foreign, "that no installer marked"},
		{"gpt with a huge entry array", func(t *testing.T, f *os.File) {
			writeInitOSGPT(t, f, testDiskSize, false)
			hugeEntries(t, f, 512)
		}, Foreign, "implausible entry array (4294967295 entries of 128 bytes)"},
		{"initos, backup GPT only", func(t *testing.T, f *os.File) {
			writeInitOSGPT(t, f, testDiskSize, false)
			f.WriteAt(make([]byte, 512), 512) // a crash before the primary header was written
		}, Partial, "no LUKS2 volume yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testDisk(t, testDiskSize)
			tc.make(t, f)
			c, err := Probe(f, testDiskSize, 512)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != tc.kind || !strings.Contains(c.What, tc.what) {
				t.Errorf("Probe() = %s %q, want %s %q", c.Kind, c.What, tc.kind, tc.what)
			}
		})
	}
}

// hugeEntries rewrites the GPT header at off to claim 2^32-1 entries,
// with a valid header CRC.
func hugeEntries(t *testing.T, f *os.File, off int64) {
	t.Helper()
	h := make([]byte, 92)
	f.ReadAt(h, off)
	binary.LittleEndian.PutUint32(h[80:], 0xffffffff)
	clear(h[16:20])
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	f.WriteAt(h, off)
}

func TestPlanLayout(t *testing.T) {
	l, err := planLayout(4<<30, 512, DefaultESPSize, DefaultMinRootSize, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Number: 1, Name: NameESPA, Type: TypeESP, Start: 2048, Sectors: 1024000},
		{Number: 2, Name: NameESPB, Type: TypeESP, Start: 1026048, Sectors: 1024000},
		{Number: 3, Name: NameLUKS, Type: TypeLUKS, Start: 2050048, Sectors: 8388608 - 2048 - 2050048},
	}
	for i, p := range want {
		if l.Partitions[i] != p {
			t.Errorf("planLayout(4 GiB) partition %d = %+v, want %+v", i+1, l.Partitions[i], p)
		}
	}
	single, _ := planLayout(4<<30, 4096, DefaultESPSize, DefaultMinRootSize, true)
	if len(single.Partitions) != 2 || single.Partitions[1].Number != PartLUKS || single.Partitions[0].Start != 256 {
		t.Errorf("planLayout(single, 4Kn) = %+v", single.Partitions)
	}
	_, err = planLayout(1<<30, 512, DefaultESPSize, DefaultMinRootSize, false)
	var small *TooSmallError
	if !errors.As(err, &small) || !strings.Contains(err.Error(), "disk is too small: 1.0 GiB, the layout needs at least 2.0 GiB") {
		t.Errorf("planLayout(1 GiB) error = %v", err)
	}
}
