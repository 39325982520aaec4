package squashfs

// metaWriter builds one metadata table in memory (format.adoc "Packing
// Metadata"): a stream of records cut into 8 KiB blocks, each compressed
// (or stored raw when compression does not shrink it) behind a u16 header.
// Records may straddle blocks. Tables are small next to the data (about
// 40 bytes per inode), so they stay in memory until they are written.
type metaWriter struct {
	enc    encoder
	cur    []byte   // the current, unflushed block
	out    []byte   // the encoded table so far
	starts []uint64 // offset in out of every flushed block
	tmp    []byte
}

func newMetaWriter(enc encoder) *metaWriter {
	return &metaWriter{enc: enc, cur: make([]byte, 0, metaSize)}
}

// pos is where the next record goes: the offset of the current block from
// the table start, and the offset inside it.
func (m *metaWriter) pos() (block uint64, offset uint16) {
	return uint64(len(m.out)), uint16(len(m.cur))
}

// stream is the next record's position in the uncompressed stream.
func (m *metaWriter) stream() uint64 {
	return uint64(len(m.starts))*metaSize + uint64(len(m.cur))
}

// write appends a record.
func (m *metaWriter) write(p []byte) error {
	for len(p) > 0 {
		n := copy(m.cur[len(m.cur):metaSize], p)
		m.cur = m.cur[:len(m.cur)+n]
		p = p[n:]
		if len(m.cur) == metaSize {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush encodes the current block.
func (m *metaWriter) flush() error {
	if len(m.cur) == 0 {
		return nil
	}
	var err error
	m.tmp, err = m.enc.compress(m.tmp[:0], m.cur)
	if err != nil {
		return err
	}
	m.starts = append(m.starts, uint64(len(m.out)))
	if len(m.tmp) < len(m.cur) {
		m.out = le.AppendUint16(m.out, uint16(len(m.tmp)))
		m.out = append(m.out, m.tmp...)
	} else {
		m.out = le.AppendUint16(m.out, uint16(len(m.cur))|metaRawBit)
		m.out = append(m.out, m.cur...)
	}
	m.cur = m.cur[:0]
	return nil
}

// finish flushes the last block and returns the encoded table.
func (m *metaWriter) finish() ([]byte, error) {
	if err := m.flush(); err != nil {
		return nil, err
	}
	return m.out, nil
}

// lookupTable encodes a lookup table (format.adoc "Storing Lookup
// Tables"): the entries in metadata blocks at start, followed by the
// uncompressed list of their absolute locations. It returns the bytes to
// write at start and the offset of the location list (the superblock
// field) relative to start.
func lookupTable(enc encoder, entries []byte, start uint64) ([]byte, uint64, error) {
	m := newMetaWriter(enc)
	if err := m.write(entries); err != nil {
		return nil, 0, err
	}
	out, err := m.finish()
	if err != nil {
		return nil, 0, err
	}
	list := uint64(len(out))
	for _, s := range m.starts {
		out = le.AppendUint64(out, start+s)
	}
	return out, list, nil
}
