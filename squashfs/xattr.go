package squashfs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// xattr is one extended attribute: its namespace prefix id, the name
// without the prefix, and the value.
type xattr struct {
	typ   uint16
	name  string
	value string
}

// Xattr key prefixes (format.adoc "Extended Attribute Table").
var xattrPrefixes = []string{"user.", "trusted.", "security."}

const xattrOOL = 0x0100 // value stored out of line

// fullName is the attribute's name with its prefix.
func (x xattr) fullName() string { return xattrPrefixes[x.typ] + x.name }

// convertXattrs turns an Entry's attributes into sorted xattrs, skipping
// the namespaces squashfs cannot hold (e.g. system.posix_acl_access).
func convertXattrs(m map[string]string) (xs []xattr, skipped int) {
	for k, v := range m {
		t, ok := prefixOf(k)
		if !ok || len(k) == len(xattrPrefixes[t]) {
			skipped++
			continue
		}
		xs = append(xs, xattr{typ: t, name: k[len(xattrPrefixes[t]):], value: v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].fullName() < xs[j].fullName() })
	return xs, skipped
}

func prefixOf(name string) (uint16, bool) {
	for i, p := range xattrPrefixes {
		if strings.HasPrefix(name, p) {
			return uint16(i), true
		}
	}
	return 0, false
}

// encodeXattrs serialises a set of attributes as key/value pairs, every
// value inline.
func encodeXattrs(xs []xattr) []byte {
	var b []byte
	for _, x := range xs {
		b = le.AppendUint16(b, x.typ)
		b = le.AppendUint16(b, uint16(len(x.name)))
		b = append(b, x.name...)
		b = le.AppendUint32(b, uint32(len(x.value)))
		b = append(b, x.value...)
	}
	return b
}

// checkXattrs refuses attributes whose sizes do not fit the format.
func checkXattrs(xs []xattr) error {
	for _, x := range xs {
		if len(x.name) > 0xFFFF {
			return fmt.Errorf("xattr %q: name too long", x.fullName())
		}
		if len(x.value) > 1<<20 {
			return fmt.Errorf("xattr %q: value of %d bytes exceeds 1 MiB", x.fullName(), len(x.value))
		}
	}
	return nil
}

// xattrTable collects the distinct attribute sets of an image.
type xattrTable struct {
	kv    *metaWriter
	ids   []byte // xattrIDEntry records
	index map[string]uint32
}

func newXattrTable(enc encoder) *xattrTable {
	return &xattrTable{kv: newMetaWriter(enc), index: map[string]uint32{}}
}

// add returns the xattr id of a set, writing it the first time it is seen.
func (t *xattrTable) add(xs []xattr) (uint32, error) {
	if len(xs) == 0 {
		return invalidXattr, nil
	}
	enc := encodeXattrs(xs)
	if id, ok := t.index[string(enc)]; ok {
		return id, nil
	}
	block, off := t.kv.pos()
	if err := t.kv.write(enc); err != nil {
		return 0, err
	}
	id := uint32(len(t.index))
	t.index[string(enc)] = id
	t.ids = appendStruct(t.ids, xattrIDEntry{Ref: inodeRef(block, off), Count: uint32(len(xs)), Size: uint32(len(enc))})
	return id, nil
}

// encode returns the xattr section to write at start (key/value blocks,
// id blocks, the table header and the id block locations) and the
// position of the header relative to start (the superblock field).
func (t *xattrTable) encode(enc encoder, start uint64) ([]byte, uint64, error) {
	kv, err := t.kv.finish()
	if err != nil {
		return nil, 0, err
	}
	idStart := start + uint64(len(kv))
	ids, list, err := lookupTable(enc, t.ids, idStart)
	if err != nil {
		return nil, 0, err
	}
	out := append(kv, ids[:list]...)
	hdr := uint64(len(out))
	out = appendStruct(out, xattrTableHeader{KVStart: start, IDs: uint32(len(t.index))})
	return append(out, ids[list:]...), hdr, nil
}

var errXattr = errors.New("corrupt xattr table")
