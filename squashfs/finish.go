package squashfs

import (
	"errors"
	"fmt"

	"initos/verity"
)

// Result describes a written image.
type Result struct {
	// Size is the image size: BytesUsed padded to 4 KiB. A verity tree,
	// when asked for, starts there (its hash offset).
	Size int64
	// BytesUsed is the superblock's bytes_used.
	BytesUsed int64
	// Compressor, Level and BlockSize are the settings used (defaults
	// filled in).
	Compressor Compressor
	Level      int
	BlockSize  int
	// Inodes and Fragments are the superblock's counts.
	Inodes    uint32
	Fragments uint32
	// InputBytes is the file content read; DataBytes what its blocks and
	// fragments take in the image; DuplicateBytes the content found
	// again and stored once.
	InputBytes, DataBytes, DuplicateBytes int64
	// SkippedXattrs counts attributes of namespaces squashfs cannot hold.
	SkippedXattrs int
	// BufferBytes is the memory held by the compression pipeline's
	// buffers: the bound on what is in flight.
	BufferBytes int64
	// Verity is the appended hash tree (Options.Verity).
	Verity *verity.Result
}

// Abort stops the writer's goroutines without finishing the image. It
// does nothing after Finish.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.pipe.cancel(errors.New("squashfs: aborted"))
	w.pipe.stop()
}

// Finish waits for the content, writes the metadata tables, the
// superblock and the padding (and the verity tree), and returns what was
// written. The Writer cannot be used afterwards.
func (w *Writer) Finish() (*Result, error) {
	if w.done {
		return nil, errors.New("squashfs: Finish called twice")
	}
	if w.err != nil {
		w.Abort()
		return nil, w.err
	}
	w.done = true
	if err := w.pipe.finish(); err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	res, err := w.writeMetadata()
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	if w.opts.Verity != nil {
		if res.Verity, err = w.appendVerity(res.Size); err != nil {
			return nil, fmt.Errorf("squashfs: %w", err)
		}
	}
	return res, nil
}

// writeMetadata writes everything after the data blocks, in the order the
// kernel checks: inode table, directory table, fragment table, export
// table, id table, xattr table; then the padding and the superblock.
func (w *Writer) writeMetadata() (*Result, error) {
	o := w.opts
	enc, err := newEncoder(o.Compressor, o.Level, o.BlockSize)
	if err != nil {
		return nil, err
	}
	if o.rawMetadata {
		enc = rawEncoder{}
	}
	p := w.pipe
	dataEnd := w.out.pos()
	t := newTables(enc, o.BlockSize)
	names := map[*inode][]string{}
	t.number(w.root, names)
	if err := t.writeTree(w.root, t.count+1, names); err != nil {
		return nil, err
	}
	sb := superblock{Magic: magic, Inodes: t.count, BlockSize: uint32(o.BlockSize), Fragments: uint32(len(p.frags)),
		Compressor: uint16(o.Compressor), BlockLog: o.blockLog(), Flags: flagCompOptions | flagAlwaysFragments,
		Major: versionMajor, Minor: versionMinor, RootInode: w.root.ref,
		FragmentTable: invalidTable, ExportTable: invalidTable, XattrIDTable: invalidTable}
	if !o.NoDuplicates {
		sb.Flags |= flagDuplicates
	}
	if err := w.writeTables(enc, t, &sb); err != nil {
		return nil, err
	}
	if sb.ModTime = clampTime(o.Epoch); o.Epoch.IsZero() {
		sb.ModTime = w.newest
	}
	size, err := w.writeEnd(&sb, enc)
	if err != nil {
		return nil, err
	}
	return &Result{Size: size, BytesUsed: int64(sb.BytesUsed), Compressor: o.Compressor, Level: o.Level, BlockSize: o.BlockSize,
		Inodes: t.count, Fragments: sb.Fragments,
		InputBytes: p.inBytes, DataBytes: dataEnd - w.dataAt, DuplicateBytes: p.dupBytes,
		SkippedXattrs: w.skipped, BufferBytes: p.memory() + outBuffer}, nil
}

// writeTables appends the tables and fills their superblock fields.
func (w *Writer) writeTables(enc encoder, t *tables, sb *superblock) error {
	inodes, err := t.inodes.finish()
	if err != nil {
		return err
	}
	dirs, err := t.dirs.finish()
	if err != nil {
		return err
	}
	sb.InodeTable = uint64(w.out.pos())
	sb.DirectoryTable = sb.InodeTable + uint64(len(inodes))
	if err := w.writeAll(inodes, dirs); err != nil {
		return err
	}
	if err := w.writeLookups(enc, t, sb); err != nil {
		return err
	}
	if len(t.xattrs.index) == 0 {
		sb.Flags |= flagNoXattrs
		return nil
	}
	start := uint64(w.out.pos())
	b, hdr, err := t.xattrs.encode(enc, start)
	if err != nil {
		return err
	}
	sb.XattrIDTable = start + hdr
	return w.out.write(b)
}

// writeLookups appends the fragment, export and id tables.
func (w *Writer) writeLookups(enc encoder, t *tables, sb *superblock) error {
	var frags []byte
	for _, f := range w.pipe.frags {
		frags = appendStruct(frags, f)
	}
	var err error
	if len(frags) > 0 {
		if sb.FragmentTable, err = w.writeLookup(enc, frags); err != nil {
			return err
		}
	}
	if w.opts.Exportable {
		refs := make([]byte, 0, 8*len(t.ordered))
		for _, ino := range t.ordered {
			refs = le.AppendUint64(refs, ino.ref)
		}
		if sb.ExportTable, err = w.writeLookup(enc, refs); err != nil {
			return err
		}
		sb.Flags |= flagExportable
	}
	ids := make([]byte, 0, 4*len(t.idList))
	for _, id := range t.idList {
		ids = le.AppendUint32(ids, id)
	}
	sb.IDs = uint16(len(t.idList))
	sb.IDTable, err = w.writeLookup(enc, ids)
	return err
}

// writeLookup appends a lookup table and returns its location list's
// position.
func (w *Writer) writeLookup(enc encoder, entries []byte) (uint64, error) {
	start := uint64(w.out.pos())
	b, list, err := lookupTable(enc, entries, start)
	if err != nil {
		return 0, err
	}
	return start + list, w.out.write(b)
}

func (w *Writer) writeAll(bs ...[]byte) error {
	for _, b := range bs {
		if err := w.out.write(b); err != nil {
			return err
		}
	}
	return nil
}

// writeEnd pads the image to 4 KiB, writes the superblock and the
// compressor options, and cuts off anything written beyond the end.
func (w *Writer) writeEnd(sb *superblock, enc encoder) (int64, error) {
	o := w.opts
	sb.BytesUsed = uint64(w.out.pos())
	size := (w.out.pos() + devBlockSize - 1) &^ (devBlockSize - 1)
	if err := w.out.write(make([]byte, size-w.out.pos())); err != nil {
		return 0, err
	}
	if err := w.out.flush(); err != nil {
		return 0, err
	}
	opts := compressorOptions(o.Compressor, o.Level, o.BlockSize)
	head := appendStruct(make([]byte, 0, w.dataAt), *sb)
	head = le.AppendUint16(head, uint16(len(opts))|metaRawBit)
	head = append(head, opts...)
	if _, err := w.dst.WriteAt(head, 0); err != nil {
		return 0, fmt.Errorf("write superblock: %w", err)
	}
	if w.out.high > size {
		t, ok := w.dst.(interface{ Truncate(int64) error })
		if !ok {
			return 0, fmt.Errorf("the output cannot be truncated to %d bytes after duplicates were dropped", size)
		}
		if err := t.Truncate(size); err != nil {
			return 0, fmt.Errorf("truncate image: %w", err)
		}
	}
	return size, nil
}

// rawEncoder never shrinks a block, so metadata is stored uncompressed
// (tests patch it in place).
type rawEncoder struct{}

func (rawEncoder) compress(dst, src []byte) ([]byte, error) {
	return append(append(dst, src...), 0), nil
}
