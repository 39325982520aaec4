// Package squashfs writes and reads squashfs 4.0 images, the format the
// Linux kernel mounts (fs/squashfs; the on-disk format is described in
// squashfs-tools-ng's doc/format.adoc). InitOS uses it for the
// verity-protected modules/firmware image the initrd mounts.
//
// # Writer
//
// NewWriter starts an image on an io.WriterAt; Add takes a stream of
// Entry values (path, type, mode, owner, mtime, xattrs, and a content
// reader for regular files) in any order. AddDir (a host directory),
// AddFS (an fs.FS) and AddTar (a tar stream: an OCI layer, `docker
// export`) feed it without staging anything on disk. Finish writes the
// metadata and returns a Result.
//
// What is written:
//
//   - inodes: basic and extended directories (with a directory index for
//     listings that span metadata blocks), regular files (blocks, a
//     fragment tail, holes for all-zero blocks), symlinks, block and
//     character devices, fifos and sockets; an extended inode only where
//     the basic one cannot hold the file (xattrs, hard links, holes, sizes
//     and offsets past 4 GiB, long listings);
//   - hard links as one inode with its real link count;
//   - the uid/gid table and xattrs (user.*, trusted.*, security.*; one
//     copy of each distinct attribute set);
//   - fragments: every file tail, large files included, packed into
//     shared fragment blocks (the "always use fragments" layout);
//   - duplicates stored once: a file whose run of full blocks matches an
//     earlier one points at it, and a tail seen before points at its
//     fragment; equality is by SHA-256 of the stored bytes;
//   - the NFS export table, when asked (Options.Exportable);
//   - block sizes from 4 KiB to 1 MiB; compressors zstd (default,
//     github.com/klauspost/compress), gzip (zlib streams, klauspost's
//     deflate), xz (github.com/ulikunitz/xz: LZMA2, CRC32, dictionary =
//     block size, as the kernel preallocates) and lz4 (github.com/pierrec/
//     lz4, raw blocks, optionally HC); the compressor options block after
//     the superblock;
//   - a block stored raw when compression does not shrink it;
//   - padding to a multiple of 4 KiB, so that a dm-verity tree can follow
//     (Options.Verity appends one with package verity).
//
// Tables follow the data in the order the kernel checks: inode table,
// directory table, fragment table, export table, id table, xattr table.
//
// # Performance
//
// Compression runs on Options.Workers goroutines (GOMAXPROCS), each with
// its own encoder. Add reads content in blocks, packs tails into fragment
// blocks and queues each full block; an ordered writer takes the blocks
// in queue order, waits for each to be compressed and writes it. A fixed
// set of block buffers is recycled, so memory stays at about
// 2 x block size x (4 x workers + 4) whatever the input size
// (Result.BufferBytes). The metadata tables are kept in memory until the
// end (tens of bytes per inode).
//
// # Reproducibility
//
// The image depends only on the entries and the options, never on timing
// or on the number of workers: output positions follow the queue order,
// directory entries are sorted by name (bytes), inode numbers follow the
// sorted tree, duplicate detection is by content, and the superblock's
// time is Options.Epoch (SOURCE_DATE_EPOCH, which also clamps mtimes) or
// the newest mtime. Data blocks are laid out in Add order: AddDir and
// AddFS add in sorted order; a tar stream in its own order.
//
// # Reader
//
// NewReader opens an image (ours, mksquashfs's) for reading: it is an
// fs.FS with Lstat and ReadLink, plus Walk, Content, Xattrs and Extract
// (Linux). It reads every structure on demand, checks it against the
// image bounds and the format's limits, and refuses loops in the
// directory tables, so that a hostile image gets an error wrapping
// ErrCorrupt, never a panic, a hang or a large allocation; FuzzReader
// exercises it.
//
// # Left out
//
// Appending to an existing image, the LZO and LZMA compressors (no
// maintained pure-Go LZO; LZMA1 is deprecated), out-of-line xattr values
// and BCJ filters for xz (neither library writes them), and tail-end
// fragments kept as short blocks (mksquashfs's default layout, which the
// reader accepts). CalebQ42/squashfs (read-only) is refused by the module
// proxy; gokrazy's writer (zlib only, no fragments, xattrs or hard links)
// and go-diskfs's (stages files on disk, single-threaded) do not fit.
package squashfs
