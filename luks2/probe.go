package luks2

import (
	"bytes"
	"io"
)

// signature is one on-disk magic that DetectSignature recognizes.
type signature struct {
	name  string
	off   int64
	magic []byte
}

// signatures are the superblock and partition table magics blkid would
// report, the ones an InitOS disk or a typical Linux disk carries (offsets
// and magics from each format's specification or kernel header).
var signatures = []signature{
	{"LUKS", 0, []byte("LUKS\xba\xbe")},
	{"LUKS2 (secondary header)", 16 << 10, []byte("SKUL\xba\xbe")},
	{"GPT partition table", 512, []byte("EFI PART")},
	{"GPT partition table (4K sectors)", 4096, []byte("EFI PART")},
	{"LVM2 physical volume", 512 + 24, []byte("LVM2 001")},
	{"ext2/3/4 filesystem", 1024 + 56, []byte{0x53, 0xef}},
	{"btrfs filesystem", 64<<10 + 64, []byte("_BHRfS_M")},
	{"xfs filesystem", 0, []byte("XFSB")},
	{"f2fs filesystem", 1024, []byte{0x10, 0x20, 0xf5, 0xf2}},
	{"squashfs filesystem", 0, []byte("hsqs")},
	{"dm-verity hash device", 0, []byte("verity\x00\x00")},
	{"swap space", 4096 - 10, []byte("SWAPSPACE2")},
	{"swap space", 4096 - 10, []byte("SWAP-SPACE")},
	{"ISO 9660 filesystem", 32768 + 1, []byte("CD001")},
	{"NTFS filesystem", 3, []byte("NTFS    ")},
	{"exFAT filesystem", 3, []byte("EXFAT   ")},
	{"FAT32 filesystem", 82, []byte("FAT32   ")},
	{"FAT filesystem", 54, []byte("FAT1")},
}

// DetectSignature reports the first filesystem, LUKS or partition-table
// signature found at the start of r ("" when none), so that a format can
// refuse to overwrite data by mistake, as cryptsetup does through blkid.
// A boot sector signature (0x55 0xaa at byte 510) with none of the above
// is reported as a DOS partition table. Short devices simply have fewer
// signatures; only read errors other than EOF are returned.
func DetectSignature(r io.ReaderAt) (string, error) {
	for _, s := range signatures {
		ok, err := hasAt(r, s.off, s.magic)
		if err != nil {
			return "", err
		}
		if ok {
			return s.name, nil
		}
	}
	if ok, err := hasAt(r, 510, []byte{0x55, 0xaa}); ok || err != nil {
		return "DOS partition table", err
	}
	return "", nil
}

// hasAt reports whether r holds magic at off.
func hasAt(r io.ReaderAt, off int64, magic []byte) (bool, error) {
	buf := make([]byte, len(magic))
	n, err := r.ReadAt(buf, off)
	if n < len(buf) {
		if err == io.EOF || err == io.ErrUnexpectedEOF || err == nil {
			return false, nil
		}
		return false, err
	}
	return bytes.Equal(buf, magic), nil
}
