package squashfs

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"

	"initos/internal/progress"
	"initos/verity"
)

// Options configure a Writer. The zero value writes zstd level 3 with
// 128 KiB blocks on every core, keeps owners and mtimes, packs every
// file tail into fragments and stores duplicate content once.
type Options struct {
	// Compressor is Zstd (default), Gzip, XZ or LZ4.
	Compressor Compressor
	// Level is the compression level; 0 means Compressor.DefaultLevel().
	// zstd takes 1..22, mapped onto the four klauspost encoders (1-2
	// fastest, 3-5 default, 6-9 better, 10-22 best); gzip 1..9; xz 0..9
	// (recorded, but ulikunitz/xz has one usable match finder, so every
	// level compresses the same); lz4 0 (fast) or 1..9 (high compression).
	Level int
	// BlockSize is the data block size, a power of two from 4 KiB to
	// 1 MiB; 0 means 128 KiB.
	BlockSize int
	// Epoch, when not zero, is the superblock's time and clamps every
	// entry's mtime to it (SOURCE_DATE_EPOCH). When zero the superblock
	// holds the newest mtime of the image, so the output still depends on
	// the input only.
	Epoch time.Time
	// AllRoot makes every file owned by uid 0 and gid 0.
	AllRoot bool
	// MapOwner, when set, rewrites each entry's owner (after AllRoot).
	MapOwner func(uid, gid uint32) (uint32, uint32)
	// Exportable adds the NFS export table (inode number -> inode).
	Exportable bool
	// NoDuplicates turns duplicate detection off: identical blocks and
	// tails are stored again.
	NoDuplicates bool
	// Workers is the number of compression goroutines; 0 means
	// GOMAXPROCS. The output does not depend on it.
	Workers int
	// Progress, when not nil, is advanced by the bytes of file content
	// read.
	Progress *progress.Bar
	// Verity, when not nil, appends a dm-verity hash tree (package verity)
	// after the 4 KiB-padded image, its superblock at the hash offset
	// Result.Size, and returns it in Result.Verity. A nil Salt and zero
	// UUID are derived from the image's metadata, so the root hash is
	// reproducible; NoSuperblock and DataBlocks must be unset, and the data
	// block size is 4096.
	Verity *verity.Params

	rawMetadata bool // tests: store metadata blocks uncompressed
}

// withDefaults fills zero fields and checks the others.
func (o Options) withDefaults() (Options, error) {
	if o.Compressor == 0 {
		o.Compressor = Zstd
	}
	if !o.Compressor.writable() {
		return o, fmt.Errorf("squashfs: cannot write %v images (zstd, gzip, xz or lz4)", o.Compressor)
	}
	if o.Level == 0 {
		o.Level = o.Compressor.DefaultLevel()
	}
	if lo, hi := o.Compressor.levelRange(); o.Level < lo || o.Level > hi {
		return o, fmt.Errorf("squashfs: %v level %d out of range %d..%d", o.Compressor, o.Level, lo, hi)
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSize < MinBlockSize || o.BlockSize > MaxBlockSize || bits.OnesCount(uint(o.BlockSize)) != 1 {
		return o, fmt.Errorf("squashfs: block size %d is not a power of two from %d to %d", o.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if v := o.Verity; v != nil {
		if v.NoSuperblock || v.DataBlocks != 0 {
			return o, fmt.Errorf("squashfs: verity: NoSuperblock and DataBlocks cannot be set")
		}
		if v.DataBlockSize != 0 && v.DataBlockSize != devBlockSize {
			return o, fmt.Errorf("squashfs: verity: data block size %d, want %d", v.DataBlockSize, devBlockSize)
		}
	}
	return o, nil
}

// blockLog is log2 of the block size.
func (o Options) blockLog() uint16 { return uint16(bits.TrailingZeros(uint(o.BlockSize))) }
