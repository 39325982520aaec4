package boot

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"initos/bootconfig"
	"initos/dm"
	"initos/kmod"
	"initos/loop"
	"initos/verity"
)

// Layout of the modules image (a squashfs): the modules of each kernel
// under ImageModulesDir/<release>, the firmware under ImageFirmwareDir.
const (
	ImageModulesDir  = "lib/modules"
	ImageFirmwareDir = "lib/firmware"
)

const (
	modulesMount  = "initos/modules" // under Run
	modulesMapper = "initos-modules" // the dm-verity device
)

// openModulesImage is the "modules" step: open the kernel modules image
// on the ESP through dm-verity, with the root hash, salt, sizes and
// offset from the signed config (the verity superblock is only checked
// against them), mount its squashfs read-only, and switch the module
// index to it. Every later read of the image is verified by the kernel: a
// tampered block fails with EIO where it is first read.
func (b *Boot) openModulesImage(ctx context.Context) error {
	m := b.Config.ModulesImage
	if !m.Enabled() {
		b.Log.Printf("modules: no modules image in the config: only the initrd's modules")
		return nil
	}
	file := filepath.Join(b.paths.Run, espMount, filepath.FromSlash(m.File))
	table, err := verityTable(file, m)
	if err != nil {
		return err
	}
	lo, err := loop.Attach(file, loop.Config{ReadOnly: true, Autoclear: true, BlockSize: 4096})
	if err != nil {
		return fmt.Errorf("modules image %s: %w", m.File, err)
	}
	defer lo.Close() // the mapping holds the loop device from here on
	table.DataDevice, table.HashDevice = lo.Path, lo.Path
	uuid := "INITOS-MODULES-" + m.RootHash[:16]
	node, err := dm.CreateDevice(modulesMapper, uuid, true, table)
	if err != nil {
		return fmt.Errorf("modules image %s: dm-verity: %w", m.File, err)
	}
	mnt := filepath.Join(b.paths.Run, modulesMount)
	if err := mountOnce(mountSpec{node, mnt, "squashfs", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV, ""}); err != nil {
		return b.imageError(m, err)
	}
	return b.useImage(m, mnt)
}

// useImage switches the module index to the mounted image.
func (b *Boot) useImage(m bootconfig.ModulesImage, mnt string) error {
	dir := filepath.Join(mnt, ImageModulesDir, b.Release)
	ix, err := kmod.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("modules image %s has no modules for kernel %s (%s)", m.File, b.Release, path.Join(ImageModulesDir, b.Release))
		}
		return b.imageError(m, err)
	}
	b.index, b.ModulesDir = ix, dir
	if fw := filepath.Join(mnt, ImageFirmwareDir); exists(fw) {
		b.FirmwareDir = fw
	}
	b.Log.Printf("modules: %s verified by dm-verity (root hash %s), mounted on %s", m.File, m.RootHash, mnt)
	return nil
}

// verityTable checks the image file against the signed config and returns
// the dm-verity target (devices left empty).
func verityTable(file string, m bootconfig.ModulesImage) (dm.Verity, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return dm.Verity{}, fmt.Errorf("modules image %s missing on the ESP", m.File)
	}
	if err != nil {
		return dm.Verity{}, fmt.Errorf("modules image: %w", err)
	}
	defer f.Close()
	sb, err := verity.ReadSuperblock(f, m.HashOffset)
	if err != nil {
		return dm.Verity{}, fmt.Errorf("modules image %s: verity superblock at %d: %w", m.File, m.HashOffset, err)
	}
	root, _ := hex.DecodeString(m.RootHash)
	salt, _ := hex.DecodeString(m.Salt)
	if err := checkSuperblock(sb, m, salt); err != nil {
		return dm.Verity{}, fmt.Errorf("modules image %s: %w", m.File, err)
	}
	return dm.Verity{
		DataBlocks:     uint64(m.DataSize / 4096),
		HashStartBlock: uint64(m.HashOffset/4096) + 1, // after the superblock
		RootDigest:     root,
		Salt:           salt,
	}, nil
}

// checkSuperblock compares the image's (unauthenticated) verity
// superblock with the signed config, to report a mismatch clearly rather
// than as a verification error on the first read.
func checkSuperblock(sb *verity.Superblock, m bootconfig.ModulesImage, salt []byte) error {
	alg, _ := sb.AlgorithmName()
	switch {
	case sb.HashType != 1 || alg != "sha256" || sb.DataBlockSize != 4096 || sb.HashBlockSize != 4096:
		return fmt.Errorf("verity superblock: hash type %d, %s, blocks %d/%d: want type 1, sha256, 4096/4096", sb.HashType, alg, sb.DataBlockSize, sb.HashBlockSize)
	case sb.DataBlocks != uint64(m.DataSize/4096):
		return fmt.Errorf("verity superblock: %d data blocks, the signed config says %d", sb.DataBlocks, m.DataSize/4096)
	case !bytes.Equal(sb.Salt[:sb.SaltSize], salt):
		return fmt.Errorf("verity superblock: salt %x, the signed config says %x", sb.Salt[:sb.SaltSize], salt)
	}
	return nil
}

// imageError explains an error reading the modules image: an I/O error
// there is dm-verity refusing a block that does not match the signed root
// hash; the kernel's verity messages are quoted.
func (b *Boot) imageError(m bootconfig.ModulesImage, err error) error {
	msgs := kernelMessages("verity")
	if !errors.Is(err, unix.EIO) && len(msgs) == 0 {
		return fmt.Errorf("modules image %s: %w", m.File, err)
	}
	return fmt.Errorf("modules image %s fails verification: dm-verity refused a block that does not match the signed root hash %s (%v); kernel: %s",
		m.File, m.RootHash, err, strings.Join(msgs, "; "))
}
