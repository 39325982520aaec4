package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"initos/internal/atomicfile"
	"initos/verity"
)

// veritySubs holds the "initos verity" verbs; the dm helper adds "open" and
// "close" from its own file's init.
var veritySubs = map[string]subcommand{
	"format": {"build a hash tree (like veritysetup format)", verityFormat},
	"verify": {"check data against its tree and root hash", verityVerify},
	"dump":   {"print a hash device's superblock", verityDump},
}

func init() { register("verity", "dm-verity hash trees", runVerity) }

func runVerity(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "verity", veritySubs, args, stdout, stderr)
}

// verityFlags are the veritysetup-compatible tree options.
type verityFlags struct {
	hash           string
	dataBS, hashBS uint
	salt, uuid     string
	noSuperblock   bool
	hashOffset     int64
	format         uint
	dataBlocks     uint64
	json           bool
}

func addVerityFlags(fs *flag.FlagSet, vf *verityFlags, tree bool) {
	fs.Int64Var(&vf.hashOffset, "hash-offset", 0, "byte offset of the superblock (or tree) in HASH")
	fs.BoolVar(&vf.json, "json", false, "print JSON")
	if !tree {
		return
	}
	fs.StringVar(&vf.hash, "hash", verity.DefaultHash, "hash algorithm: sha256, sha1 or sha512")
	fs.UintVar(&vf.dataBS, "data-block-size", verity.DefaultBlockSize, "data block size in bytes")
	fs.UintVar(&vf.hashBS, "hash-block-size", verity.DefaultBlockSize, "hash block size in bytes")
	fs.StringVar(&vf.salt, "salt", "", "salt in hex, or - for none (default: 32 random bytes)")
	fs.StringVar(&vf.uuid, "uuid", "", "superblock UUID (default: random)")
	fs.BoolVar(&vf.noSuperblock, "no-superblock", false, "write no superblock")
	fs.UintVar(&vf.format, "format", 1, "hash type: 1 normal, 0 Chrome OS")
	fs.Uint64Var(&vf.dataBlocks, "data-blocks", 0, "number of data blocks to hash (default: all whole blocks)")
}

// params converts the flags to verity.Params.
func (vf *verityFlags) params() (verity.Params, error) {
	p := verity.Params{Hash: vf.hash, NoSuperblock: vf.noSuperblock, DataBlocks: vf.dataBlocks}
	var err error
	if p.DataBlockSize, p.HashBlockSize, err = blockSizeFlags(vf.dataBS, vf.hashBS); err != nil {
		return p, err
	}
	switch vf.format {
	case 0:
		p.ChromeOS = true
	case 1:
	default:
		return p, fmt.Errorf("%w: --format %d: want 0 or 1", errUsage, vf.format)
	}
	switch vf.salt {
	case "":
	case "-":
		p.NoSalt = true
	default:
		s, err := hex.DecodeString(vf.salt)
		if err != nil {
			return p, fmt.Errorf("%w: --salt: %v", errUsage, err)
		}
		p.Salt = s
	}
	if vf.uuid != "" {
		u, err := verity.ParseUUID(vf.uuid)
		if err != nil {
			return p, fmt.Errorf("%w: --uuid: %v", errUsage, err)
		}
		p.UUID = u
	}
	return p, nil
}

// blockSizeFlags checks --data-block-size and --hash-block-size fit the
// uint32 fields (verity checks they are powers of two in range).
func blockSizeFlags(data, hash uint) (uint32, uint32, error) {
	for _, f := range []struct {
		name string
		v    uint
	}{{"data-block-size", data}, {"hash-block-size", hash}} {
		if f.v > verity.MaxBlockSize {
			return 0, 0, fmt.Errorf("%w: --%s %d: above %d", errUsage, f.name, f.v, verity.MaxBlockSize)
		}
	}
	return uint32(data), uint32(hash), nil
}

func verityFormat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var vf verityFlags
	fs := newFlags("verity format", stdout, stderr)
	addVerityFlags(fs, &vf, true)
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	p, err := vf.params()
	if err != nil {
		return err
	}
	r, err := formatFiles(pos[0], pos[1], vf.hashOffset, p)
	if err != nil {
		return fmt.Errorf("verity format %s into %s: %w", pos[0], pos[1], err)
	}
	return printTree(stdout, pos[1], r, true, vf.json)
}

// formatFiles formats DATA into HASH: in place when HASH exists (a file or
// a device, or DATA itself), else into a new file created atomically.
func formatFiles(dataPath, hashPath string, off int64, p verity.Params) (*verity.Result, error) {
	data, size, err := openSized(dataPath, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	hst, err := os.Stat(hashPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return formatNew(data, size, hashPath, off, p)
	case err != nil:
		return nil, err
	}
	dst, err := data.Stat()
	if err != nil {
		return nil, err
	}
	if os.SameFile(dst, hst) {
		return formatSameFile(dataPath, off, p)
	}
	hash, err := os.OpenFile(hashPath, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	r, err := verity.Format(data, size, hash, off, p)
	if err != nil {
		hash.Close()
		return nil, err
	}
	return r, syncClose(hash)
}

// formatSameFile appends the tree to the data at off: the data is the
// first off bytes (or the whole file when it ends before off, as with
// veritysetup) unless --data-blocks says otherwise.
func formatSameFile(path string, off int64, p verity.Params) (*verity.Result, error) {
	if off <= 0 {
		return nil, fmt.Errorf("%w: DATA and HASH are the same file: give --hash-offset", errUsage)
	}
	f, size, err := openSized(path, os.O_RDWR)
	if err != nil {
		return nil, err
	}
	bs := int64(p.DataBlockSize)
	if bs == 0 {
		bs = verity.DefaultBlockSize
	}
	if p.DataBlocks > uint64(off/bs) {
		f.Close()
		return nil, fmt.Errorf("format %s: %d data blocks of %d bytes overlap the hash offset %d", path, p.DataBlocks, bs, off)
	}
	r, err := verity.Format(f, min(size, off), f, off, p)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, syncClose(f)
}

// formatNew writes a new hash file atomically (package atomicfile).
func formatNew(data io.ReaderAt, size int64, path string, off int64, p verity.Params) (*verity.Result, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	r, err := verity.Format(data, size, f, off, p)
	if err != nil {
		return nil, err
	}
	return r, f.Commit()
}

func syncClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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

func verityVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var vf verityFlags
	fs := newFlags("verity verify", stdout, stderr)
	addVerityFlags(fs, &vf, true)
	pos, err := parseFlags(fs, args, 3, 3)
	if err != nil {
		return err
	}
	p, err := vf.params()
	if err != nil {
		return err
	}
	root, err := hex.DecodeString(pos[2])
	if err != nil {
		return fmt.Errorf("%w: ROOTHASH %q: %v", errUsage, pos[2], err)
	}
	data, size, err := openSized(pos[0], os.O_RDONLY)
	if err != nil {
		return err
	}
	defer data.Close()
	hash, err := os.Open(pos[1])
	if err != nil {
		return err
	}
	defer hash.Close()
	r, err := verity.Open(hash, vf.hashOffset, size, p, root)
	if err != nil {
		return fmt.Errorf("verity verify: tree in %s: %w", pos[1], err)
	}
	if err := r.Verify(data, hash); err != nil {
		return &exitError{1, fmt.Errorf("verity verify %s: %w", pos[0], err)}
	}
	return nil
}

func verityDump(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var vf verityFlags
	fs := newFlags("verity dump", stdout, stderr)
	addVerityFlags(fs, &vf, false)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := verity.Open(f, vf.hashOffset, 0, verity.Params{}, nil)
	if err != nil {
		return fmt.Errorf("verity dump %s: %w", pos[0], err)
	}
	return printTree(stdout, pos[0], r, false, vf.json)
}
