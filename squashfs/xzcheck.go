package squashfs

import (
	"bytes"
	"errors"
	"fmt"
)

// checkXZ walks the structure of one xz stream (the .xz file format 1.1.0:
// stream header and footer, index, block headers) and fails when a block
// asks for an LZMA2 dictionary larger than dictMax. It does not check
// CRCs or decode anything: the decoder does that afterwards.
func checkXZ(src []byte, dictMax int) error {
	const hdr = 12
	if len(src) < 2*hdr || !bytes.HasPrefix(src, []byte("\xfd7zXZ\x00")) {
		return errors.New("xz: missing stream header")
	}
	foot := src[len(src)-hdr:]
	if !bytes.Equal(foot[10:], []byte("YZ")) {
		return errors.New("xz: missing stream footer")
	}
	backward := (int64(le.Uint32(foot[4:])) + 1) * 4
	indexAt := int64(len(src)-hdr) - backward
	if indexAt < hdr || src[indexAt] != 0 {
		return errors.New("xz: bad index position")
	}
	idx := src[indexAt+1 : len(src)-hdr]
	records, n := uvarintXZ(idx)
	if n == 0 || records > uint64(len(src)) {
		return errors.New("xz: bad index record count")
	}
	idx = idx[n:]
	pos := int64(hdr)
	for range records {
		unpadded, n1 := uvarintXZ(idx)
		_, n2 := uvarintXZ(idx[n1:])
		if n1 == 0 || n2 == 0 || unpadded > uint64(indexAt) {
			return errors.New("xz: bad index record")
		}
		idx = idx[n1+n2:]
		if pos >= indexAt {
			return errors.New("xz: block past the index")
		}
		if err := checkXZBlock(src[pos:indexAt], dictMax); err != nil {
			return err
		}
		pos += (int64(unpadded) + 3) &^ 3
	}
	return nil
}

// checkXZBlock checks the filter chain in one block header.
func checkXZBlock(b []byte, dictMax int) error {
	size := (int(b[0]) + 1) * 4
	if b[0] == 0 || size > len(b) {
		return errors.New("xz: bad block header size")
	}
	h := b[2:size]
	flags := b[1]
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			_, n := uvarintXZ(h)
			if n == 0 {
				return errors.New("xz: bad block size field")
			}
			h = h[n:]
		}
	}
	for range int(flags&3) + 1 {
		id, n1 := uvarintXZ(h)
		psize, n2 := uvarintXZ(h[n1:])
		if n1 == 0 || n2 == 0 || psize > uint64(len(h)-n1-n2) {
			return errors.New("xz: bad filter flags")
		}
		props := h[n1+n2 : n1+n2+int(psize)]
		if id == 0x21 { // LZMA2
			if len(props) != 1 || props[0] > 40 {
				return errors.New("xz: bad LZMA2 properties")
			}
			if d := lzma2Dict(props[0]); d > uint64(dictMax) {
				return fmt.Errorf("xz: dictionary of %d bytes exceeds %d", d, dictMax)
			}
		}
		h = h[n1+n2+int(psize):]
	}
	return nil
}

// lzma2Dict decodes the LZMA2 dictionary-size property byte.
func lzma2Dict(p byte) uint64 {
	if p == 40 {
		return 0xFFFFFFFF
	}
	return uint64(2|p&1) << (p/2 + 11)
}

// uvarintXZ decodes an xz variable-length integer (at most 9 bytes); n is
// 0 when b holds none.
func uvarintXZ(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
