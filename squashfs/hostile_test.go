package squashfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// hostileBase is a small image with uncompressed metadata, so that tests
// can patch structures in place.
func hostileBase(t *testing.T) []byte {
	t.Helper()
	nodes := []tnode{
		{Path: ".", Mode: fs.ModeDir | 0o755},
		{Path: "dir", Mode: fs.ModeDir | 0o755},
		{Path: "dir/sub", Mode: fs.ModeDir | 0o755},
		{Path: "file", Mode: 0o644, Data: pattern("text", 3*MinBlockSize+10, 1)},
		{Path: "small", Mode: 0o644, Data: "tail only", Xattrs: map[string]string{"user.a": "b"}},
	}
	img, _ := buildImage(t, nodes, Options{BlockSize: MinBlockSize, rawMetadata: true})
	return img
}

// readAll opens an image and walks it, reading every file and xattr.
func readAll(img []byte) error {
	r, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		return err
	}
	return r.Walk(func(p string, in *Inode) error {
		if _, err := r.Xattrs(in); err != nil {
			return err
		}
		if in.Mode.IsRegular() {
			c, err := r.Content(in)
			if err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(c, 1<<24)); err != nil {
				return err
			}
		}
		return nil
	})
}

// patchAt returns a copy of img with b written at off.
func patchAt(img []byte, off int, b []byte) []byte {
	out := bytes.Clone(img)
	copy(out[off:], b)
	return out
}

// entryOffset finds a directory entry by name in raw metadata: the
// offset of its 8-byte dirEntry.
func entryOffset(t *testing.T, img []byte, name string) int {
	t.Helper()
	sb := readSB(t, img)
	i := bytes.Index(img[sb.DirectoryTable:], []byte(name))
	if i < 0 {
		t.Fatalf("entry %q not found in the directory table", name)
	}
	return int(sb.DirectoryTable) + i - dirEntrySize
}

func readSB(t *testing.T, img []byte) superblock {
	t.Helper()
	var sb superblock
	if _, err := decodeStruct(img, &sb); err != nil {
		t.Fatal(err)
	}
	return sb
}

func u16(v uint16) []byte { return le.AppendUint16(nil, v) }
func u32(v uint32) []byte { return le.AppendUint32(nil, v) }
func u64(v uint64) []byte { return le.AppendUint64(nil, v) }

// TestHostileImages: handcrafted corruptions give an error naming the
// problem (wrapping ErrCorrupt), never a panic, a hang or a big
// allocation.
func TestHostileImages(t *testing.T) {
	base := hostileBase(t)
	if err := readAll(base); err != nil {
		t.Fatalf("base image: %v", err)
	}
	sb := readSB(t, base)
	rootBlock, rootOff := splitRef(sb.RootInode)
	dirEnt := func(name string) int { return entryOffset(t, base, name) }
	for _, c := range []struct {
		name string
		img  []byte
		want string
	}{
		{"magic", patchAt(base, 0, []byte("hsqt")), "bad magic"},
		{"version", patchAt(base, 28, u16(3)), "version 3.0"},
		{"block log", patchAt(base, 22, u16(13)), "block log 13 does not match"},
		{"block size", patchAt(base, 12, u32(3000)), "block size 3000"},
		{"bytes used", patchAt(base, 40, u64(1<<40)), "exceeds the image size"},
		{"inode table order", patchAt(base, 64, u64(sb.DirectoryTable)), "is not before the directory table"},
		{"no ids", patchAt(base, 26, u16(0)), "empty id table"},
		{"compressor", patchAt(base, 20, u16(99)), "unknown compressor id 99"},
		{"lzo", patchAt(base, 20, u16(uint16(LZO))), "compressor lzo is not supported"},
		{"root past table", patchAt(base, 32, u64(1<<40)), "past its table"},
		{"root offset", patchAt(base, 32, u64(inodeRef(rootBlock, 9000))), "offset 9000 past a metadata block"},
		{"inode type", patchAt(base, int(sb.InodeTable)+2+int(rootOff), u16(99)), "unknown type 99"},
		{"uid index", patchAt(base, int(sb.InodeTable)+2+int(rootOff)+4, u16(500)), "id index 500 past the id table"},
		{"directory loop", patchAt(base, dirEnt("sub"), append(u16(rootOff), u16(0)...)), "loop in the directory tables"},
		{"self loop", loopToParent(t, base), "loop in the directory tables"},
		{"header count", patchAt(base, dirEnt("dir")-dirHeaderSize, u32(0xFFFFFFFF)), "header of 4294967296 entries"},
		{"name size", patchAt(base, dirEnt("file")+6, u16(5000)), "name of 5001 bytes"},
		{"entry type", patchAt(base, dirEnt("file")+4, u16(42)), "has type 42"},
		{"type mismatch", patchAt(base, dirEnt("file")+4, u16(typeSymlink)), "has type 3 but its inode has type"},
		{"fragment count", patchAt(base, 16, u32(0)), "past the fragment table"},
		{"fragment table", patchAt(base, int(sb.FragmentTable), u64(sb.FragmentTable)), "not before its location list"},
		{"metadata size", patchAt(base, int(sb.InodeTable), u16(0x8000|9000)), "size 9000"},
		{"xattr table", patchAt(base, 56, u64(invalidTable)), "has no xattr table"},
		{"truncated", base[:sb.DirectoryTable+10], "exceeds the image size"},
		{"short", base[:50], "shorter than a superblock"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := readAll(c.img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("read %s image: %v, want an error containing %q", c.name, err, c.want)
			}
			if c.name != "lzo" && c.name != "short" && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
		})
	}
}

// loopToParent makes dir/sub's entry point at "dir" itself.
func loopToParent(t *testing.T, img []byte) []byte {
	r, err := NewReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := r.Lstat("dir")
	if err != nil {
		t.Fatal(err)
	}
	_, off := splitRef(fi.Sys().(*Inode).Ref)
	return patchAt(img, entryOffset(t, img, "sub"), u16(off))
}

// TestHostileFiles: corrupt file structures fail when the file is read.
func TestHostileFiles(t *testing.T) {
	base := hostileBase(t)
	r, err := NewReader(bytes.NewReader(base), int64(len(base)))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := r.Lstat("file")
	if err != nil {
		t.Fatal(err)
	}
	in := fi.Sys().(*Inode)
	block, off := splitRef(in.Ref)
	at := int(readSB(t, base).InodeTable) + 2 + int(block) + int(off) + inodeHeaderSize // the basic file inode
	for _, c := range []struct {
		name  string
		patch func([]byte) []byte
		want  string
	}{
		{"block past end", func(b []byte) []byte { return patchAt(b, at, u32(uint32(len(b)))) }, "past the end"},
		{"block size field", func(b []byte) []byte { return patchAt(b, at+16, u32(1<<26)) }, "size field"},
		{"block too big", func(b []byte) []byte { return patchAt(b, at+16, u32(MinBlockSize+1)) }, "size field"},
		{"fragment index", func(b []byte) []byte { return patchAt(b, at+4, u32(77)) }, "fragment 77 past"},
		{"fragment offset", func(b []byte) []byte { return patchAt(b, at+8, u32(1<<20)) }, "past its fragment"},
		{"huge size", func(b []byte) []byte { return patchAt(b, at+12, u32(0xFFFFFFF0)) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := readAll(c.patch(base))
			if c.want == "" {
				if err == nil {
					t.Fatal("read a file whose blocks do not exist: no error")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("read: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestDecompressionBomb: a metadata block that inflates past 8 KiB and an
// xz stream asking for a huge dictionary are refused.
func TestDecompressionBomb(t *testing.T) {
	for _, c := range []Compressor{Zstd, Gzip, XZ, LZ4} {
		enc, err := newEncoder(c, c.DefaultLevel(), MaxBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		bomb, err := enc.compress(nil, make([]byte, 64<<10))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := newDecoder(c, MinBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.decompress(nil, bomb, metaSize); err == nil {
			t.Errorf("%v: a 64 KiB block decompressed with an 8 KiB limit", c)
		}
	}
}
