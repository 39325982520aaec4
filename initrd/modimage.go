package initrd

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"initos/bootconfig"
	"initos/verity"
)

// squashfs superblock fields (squashfs-tools squashfs_fs.h): the magic at
// 0, bytes_used at 40.
const (
	squashfsMagic     = 0x73717368 // "hsqs" little-endian
	squashfsBytesUsed = 40
)

// ModulesImageInfo reads a modules image (a squashfs with its dm-verity
// hash tree appended at the next 4 KiB boundary, superblock first, as
// `initos modules pack` and `veritysetup format --hash-offset` write it),
// recomputes the root hash from the data, checks the tree on disk against
// it, and returns what the initrd config must say about it. file is the
// path on the ESP to record (e.g. "initos/modules-<release>.sqfs").
func ModulesImageInfo(path, file string) (bootconfig.ModulesImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image: %w", err)
	}
	defer f.Close()
	off, err := hashOffset(f)
	if err != nil {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: %w", path, err)
	}
	sb, err := verity.ReadSuperblock(f, off)
	if err != nil {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: no verity superblock at %d: %w", path, off, err)
	}
	p := sb.Params()
	if p.Hash != "sha256" || p.DataBlockSize != 4096 || p.HashBlockSize != 4096 || p.ChromeOS {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: verity tree %s with %d/%d-byte blocks: want sha256, 4096/4096, hash type 1", path, p.Hash, p.DataBlockSize, p.HashBlockSize)
	}
	dataSize := int64(sb.DataBlocks) * 4096
	if dataSize > off {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: verity covers %d bytes, beyond the tree at %d", path, dataSize, off)
	}
	p.DataBlocks = sb.DataBlocks
	computed, err := verity.Format(f, dataSize, discard{}, off, p)
	if err != nil {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: hash the data: %w", path, err)
	}
	onDisk, err := verity.Open(f, off, dataSize, p, computed.RootHash)
	if err == nil {
		err = onDisk.Verify(f, f)
	}
	if err != nil {
		return bootconfig.ModulesImage{}, fmt.Errorf("modules image %s: the hash tree on disk does not match the data: %w", path, err)
	}
	return bootconfig.ModulesImage{
		File: file, RootHash: computed.RootHashHex(), Salt: hex.EncodeToString(p.Salt),
		DataSize: dataSize, HashOffset: off,
	}, nil
}

// hashOffset returns where the verity tree starts: after the squashfs
// (bytes_used), rounded up to 4 KiB.
func hashOffset(r io.ReaderAt) (int64, error) {
	var sb [48]byte
	if _, err := r.ReadAt(sb[:], 0); err != nil {
		return 0, fmt.Errorf("read squashfs superblock: %w", err)
	}
	if binary.LittleEndian.Uint32(sb[0:]) != squashfsMagic {
		return 0, errors.New("not a squashfs image (no hsqs magic)")
	}
	used := int64(binary.LittleEndian.Uint64(sb[squashfsBytesUsed:]))
	if used <= 0 || used > 1<<40 {
		return 0, fmt.Errorf("squashfs bytes_used %d out of range", used)
	}
	return (used + 4095) &^ 4095, nil
}

// discard is a WriterAt that drops what is written (the tree is only
// recomputed for its root hash).
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }
