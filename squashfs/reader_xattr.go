package squashfs

import "fmt"

// Bounds on what the reader accepts from the xattr table (Linux's own
// limits: XATTR_NAME_MAX, XATTR_SIZE_MAX, and a generous count).
const (
	maxXattrCount = 1 << 12
	maxXattrName  = 255
	maxXattrValue = 64 << 10
)

// Xattrs returns the extended attributes of an inode (nil for none).
func (r *Reader) Xattrs(in *Inode) (map[string]string, error) {
	if in.Xattr == invalidXattr {
		return nil, nil
	}
	if r.sb.XattrIDTable == invalidTable {
		return nil, corrupt("inode %#x has xattr id %d but the image has no xattr table", in.Ref, in.Xattr)
	}
	var h xattrTableHeader
	b := make([]byte, 16)
	if err := r.readAt(b, r.sb.XattrIDTable); err != nil {
		return nil, err
	}
	decodeStruct(b, &h)
	if in.Xattr >= h.IDs {
		return nil, corrupt("inode %#x: xattr id %d past the table (%d)", in.Ref, in.Xattr, h.IDs)
	}
	if h.KVStart >= r.sb.XattrIDTable {
		return nil, corrupt("xattr key/value start %d is not before the xattr table at %d", h.KVStart, r.sb.XattrIDTable)
	}
	e, err := r.lookupEntry(r.sb.XattrIDTable+16, uint64(in.Xattr), xattrIDEntrySize)
	if err != nil {
		return nil, err
	}
	var id xattrIDEntry
	decodeStruct(e, &id)
	if id.Count == 0 || id.Count > maxXattrCount {
		return nil, corrupt("inode %#x: %d xattrs", in.Ref, id.Count)
	}
	block, off := splitRef(id.Ref)
	c, err := r.cursorAt(h.KVStart, r.sb.XattrIDTable, block, int(off))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for range id.Count {
		k, v, err := r.readXattr(c, h.KVStart)
		if err != nil {
			return nil, fmt.Errorf("inode %#x: %w", in.Ref, err)
		}
		m[k] = v
	}
	return m, nil
}

// readXattr reads one key/value pair; an out-of-line value is fetched
// from its reference.
func (r *Reader) readXattr(c *cursor, kvStart uint64) (string, string, error) {
	b, err := c.read(4)
	if err != nil {
		return "", "", err
	}
	typ, n := le.Uint16(b), int(le.Uint16(b[2:]))
	if typ&0xff > 2 || typ&^(0xff|xattrOOL) != 0 {
		return "", "", corrupt("xattr type %#x", typ)
	}
	if n == 0 || n > maxXattrName {
		return "", "", corrupt("xattr name of %d bytes", n)
	}
	name, err := c.read(n)
	if err != nil {
		return "", "", err
	}
	key := xattrPrefixes[typ&0xff] + string(name)
	if typ&xattrOOL != 0 {
		b, err := c.read(12)
		if err != nil {
			return "", "", err
		}
		if le.Uint32(b) != 8 {
			return "", "", corrupt("xattr %s: out-of-line reference of %d bytes", key, le.Uint32(b))
		}
		block, off := splitRef(le.Uint64(b[4:]))
		if c, err = r.cursorAt(kvStart, c.end, block, int(off)); err != nil {
			return "", "", err
		}
	}
	v, err := readValue(c)
	if err != nil {
		return "", "", fmt.Errorf("xattr %s: %w", key, err)
	}
	return key, v, nil
}

func readValue(c *cursor) (string, error) {
	b, err := c.read(4)
	if err != nil {
		return "", err
	}
	n := le.Uint32(b)
	if n > maxXattrValue {
		return "", corrupt("value of %d bytes", n)
	}
	v, err := c.read(int(n))
	return string(v), err
}
