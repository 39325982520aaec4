package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"initos/internal/atomicfile"
	"initos/internal/progress"
	"initos/verity"
)

// verityBarMin is the data size from which verity format and verify draw
// a progress bar (on a terminal).
const verityBarMin = 64 << 20

func init() {
	describe("verity format", "[FLAGS] DATA HASH",
		"Builds the dm-verity hash tree of DATA (a file or block device) into HASH, like veritysetup format, and prints the tree's parameters and root hash (--json: as JSON). A new HASH file is written atomically; an existing file or device is written in place at --hash-offset, superblock last, and what was there is restored if the format fails or is interrupted. DATA and HASH may be the same file when --hash-offset puts the tree after the data. Exit status 130 (SIGINT) or 143 (SIGTERM) when interrupted.")
}

func verityFormat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var vf verityFlags
	fs := newFlags("verity format", stdout, stderr)
	addVerityFlags(fs, &vf, true)
	fs.StringVar(&vf.uuid, "uuid", "", "superblock `UUID` (default: random)")
	bar := fs.Bool("progress", true, "draw a progress bar on a terminal")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	p, err := vf.params(fs)
	if err != nil {
		return err
	}
	job := formatJob{ctx: ctx, off: vf.hashOffset, p: p, stderr: stderr, bar: *bar}
	r, err := job.files(pos[0], pos[1])
	if err != nil {
		return fmt.Errorf("verity format %s into %s: %w", pos[0], pos[1], err)
	}
	return printTree(stdout, pos[1], r, true, vf.json)
}

// formatJob is one `verity format` run.
type formatJob struct {
	ctx    context.Context
	off    int64
	p      verity.Params
	stderr io.Writer
	bar    bool
}

// files formats DATA into HASH: in place when HASH exists (a file or a
// device, or DATA itself), else into a new file created atomically.
func (j *formatJob) files(dataPath, hashPath string) (*verity.Result, error) {
	data, size, err := openSized(dataPath, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	hst, err := os.Stat(hashPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return j.toNewFile(data, size, hashPath)
	case err != nil:
		return nil, err
	}
	dst, err := data.Stat()
	if err != nil {
		return nil, err
	}
	if os.SameFile(dst, hst) {
		return j.sameFile(dataPath)
	}
	hash, err := os.OpenFile(hashPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer hash.Close()
	return j.inPlace(data, size, hash)
}

// sameFile appends the tree to the data at off: the data is the first off
// bytes (or the whole file when it ends before off, as with veritysetup)
// unless --data-blocks says otherwise.
func (j *formatJob) sameFile(path string) (*verity.Result, error) {
	if j.off <= 0 {
		return nil, fmt.Errorf("%w: DATA and HASH are the same file: give --hash-offset", errUsage)
	}
	f, size, err := openSized(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bs := int64(j.p.DataBlockSize)
	if bs == 0 {
		bs = verity.DefaultBlockSize
	}
	if j.p.DataBlocks > uint64(j.off/bs) {
		return nil, fmt.Errorf("format %s: %d data blocks of %d bytes overlap the hash offset %d", path, j.p.DataBlocks, bs, j.off)
	}
	return j.inPlace(f, min(size, j.off), f)
}

// toNewFile writes a new hash file atomically (package atomicfile): an
// error or an interruption leaves nothing behind.
func (j *formatJob) toNewFile(data io.ReaderAt, size int64, path string) (*verity.Result, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	r, err := j.format(data, size, f)
	if err != nil {
		return nil, err
	}
	return r, f.Commit()
}

// inPlace formats into an existing file or device: the hash area is saved
// first and put back when the format fails or is interrupted.
func (j *formatJob) inPlace(data io.ReaderAt, size int64, hash *os.File) (*verity.Result, error) {
	area, err := saveHashArea(hash, j.off, j.hashEnd(size))
	if err != nil {
		return nil, err
	}
	defer area.close()
	r, err := j.format(data, size, hash)
	if err != nil {
		if rerr := area.restore(); rerr != nil {
			return nil, fmt.Errorf("%w (and restoring the old hash area failed: %v)", err, rerr)
		}
		return nil, err
	}
	return r, nil
}

// hashEnd is the end of the hash area the format will write, or the hash
// offset when the parameters are invalid (Format then fails before
// writing anything).
func (j *formatJob) hashEnd(dataSize int64) int64 {
	bs := int64(j.p.DataBlockSize)
	if bs == 0 {
		bs = verity.DefaultBlockSize
	}
	blocks := j.p.DataBlocks
	if blocks == 0 {
		blocks = uint64(dataSize / bs)
	}
	r, err := verity.NewResult(j.p, blocks, j.off, nil)
	if err != nil {
		return j.off
	}
	return r.HashEnd()
}

// format runs the library with the job's context and a progress bar.
func (j *formatJob) format(data io.ReaderAt, size int64, hash io.WriterAt) (*verity.Result, error) {
	bar := progress.New(j.stderr, j.bar && size >= verityBarMin, size, "hashing", true)
	defer bar.Finish()
	return verity.FormatContext(j.ctx, data, size, hash, j.off, j.p, bar.Set)
}

// openSized opens a file or block device and returns its size.
func openSized(path string, flag int) (*os.File, int64, error) {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("size %s: %w", path, err)
	}
	return f, size, nil
}
