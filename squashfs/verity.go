package squashfs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"initos/verity"
)

// appendVerity formats the dm-verity tree of the first size bytes of the
// output right after them (hash offset = size, superblock first, then
// the tree), like `veritysetup format --hash-offset=SIZE IMG IMG`.
func (w *Writer) appendVerity(size int64) (*verity.Result, error) {
	ra, ok := w.dst.(io.ReaderAt)
	if !ok {
		return nil, errors.New("verity: the output cannot be read back (need an io.ReaderAt)")
	}
	p := *w.opts.Verity
	p.DataBlockSize = devBlockSize
	if p.Salt == nil && !p.NoSalt || p.UUID.IsZero() {
		seed, err := verityseed(ra, size)
		if err != nil {
			return nil, err
		}
		if p.Salt == nil && !p.NoSalt {
			p.Salt = seed[:]
		}
		if p.UUID.IsZero() {
			copy(p.UUID[:], seed[:16])
			p.UUID[6] = p.UUID[6]&0x0f | 0x50 // name-based UUID (version 5 layout)
			p.UUID[8] = p.UUID[8]&0x3f | 0x80
		}
	}
	r, err := verity.Format(ra, size, w.dst, size, p)
	if err != nil {
		return nil, fmt.Errorf("verity: %w", err)
	}
	return r, nil
}

// verityseed derives the salt and UUID of an image's verity tree from the
// image itself, so that the same input gives the same root hash on every
// machine: SHA-256 over a domain string, the superblock and the metadata
// (inode table to end), which records every block's size.
func verityseed(r io.ReaderAt, size int64) ([32]byte, error) {
	var seed [32]byte
	sbBytes := make([]byte, superblockSize)
	if _, err := r.ReadAt(sbBytes, 0); err != nil {
		return seed, fmt.Errorf("verity: read superblock back: %w", err)
	}
	var sb superblock
	if _, err := decodeStruct(sbBytes, &sb); err != nil {
		return seed, err
	}
	if sb.InodeTable > uint64(size) {
		return seed, errors.New("verity: inode table past the image end")
	}
	h := sha256.New()
	h.Write([]byte("initos squashfs verity salt v1\x00"))
	h.Write(sbBytes)
	if _, err := io.Copy(h, io.NewSectionReader(r, int64(sb.InodeTable), size-int64(sb.InodeTable))); err != nil {
		return seed, fmt.Errorf("verity: read metadata back: %w", err)
	}
	h.Sum(seed[:0])
	return seed, nil
}
