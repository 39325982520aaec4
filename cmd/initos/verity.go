package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/internal/progress"
	"initos/verity"
)

// veritySubs holds the "initos verity" verbs; the dm helper adds "open" and
// "close" from its own file's init.
var veritySubs = map[string]subcommand{
	"format": {"build a hash tree (like veritysetup format)", verityFormat},
	"verify": {"check data against its tree and root hash", verityVerify},
	"dump":   {"print a hash device's superblock", verityDump},
}

func init() {
	register("verity", "dm-verity hash trees", runVerity)
	describe("verity verify", "[FLAGS] DATA HASH ROOTHASH",
		"Checks every data block of DATA and every block of the tree on HASH against ROOTHASH (hex), like veritysetup verify, and names the first corrupt block. The tree's parameters come from the superblock at --hash-offset; with --no-superblock from the flags. Flags given with a superblock must match it. Prints nothing on success unless --json. Exit status 1 when the data or tree is corrupt or unreadable.")
	describe("verity dump", "[--hash-offset N] [--json] HASH",
		"Prints the superblock of the verity tree on HASH at --hash-offset, like veritysetup dump.")
}

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
	fs.Int64Var(&vf.hashOffset, "hash-offset", 0, "byte `OFFSET` of the superblock (or tree) in HASH")
	fs.BoolVar(&vf.json, "json", false, "print JSON")
	if !tree {
		return
	}
	fs.StringVar(&vf.hash, "hash", verity.DefaultHash, "hash `ALGORITHM`: sha256, sha1 or sha512")
	fs.UintVar(&vf.dataBS, "data-block-size", verity.DefaultBlockSize, "data block size in `BYTES`")
	fs.UintVar(&vf.hashBS, "hash-block-size", verity.DefaultBlockSize, "hash block size in `BYTES`")
	fs.StringVar(&vf.salt, "salt", "", "`SALT` in hex, or - for none (default: 32 random bytes)")
	fs.BoolVar(&vf.noSuperblock, "no-superblock", false, "no superblock: the tree starts at --hash-offset")
	fs.UintVar(&vf.format, "format", 1, "hash `TYPE`: 1 normal, 0 Chrome OS")
	fs.Uint64Var(&vf.dataBlocks, "data-blocks", 0, "`NUMBER` of data blocks to hash (default: all whole blocks)")
}

// params converts the flags to verity.Params; errors are usage errors.
func (vf *verityFlags) params(fs *flag.FlagSet) (verity.Params, error) {
	p := verity.Params{Hash: vf.hash, NoSuperblock: vf.noSuperblock, DataBlocks: vf.dataBlocks}
	var err error
	if p.DataBlockSize, p.HashBlockSize, err = blockSizeFlags(vf.dataBS, vf.hashBS); err != nil {
		return p, usageError(fs, "%v", err)
	}
	switch vf.format {
	case 0:
		p.ChromeOS = true
	case 1:
	default:
		return p, usageError(fs, "--format %d: want 0 or 1", vf.format)
	}
	switch vf.salt {
	case "":
	case "-":
		p.NoSalt = true
	default:
		s, err := hex.DecodeString(vf.salt)
		if err != nil {
			return p, usageError(fs, "--salt: %v", err)
		}
		p.Salt = s
	}
	if vf.uuid != "" {
		u, err := verity.ParseUUID(vf.uuid)
		if err != nil {
			return p, usageError(fs, "--uuid: %v", err)
		}
		p.UUID = u
	}
	return p, nil
}

// blockSizeFlags checks --data-block-size and --hash-block-size fit the
// uint32 fields (verity checks they are powers of two in range); callers
// make its error a usage error.
func blockSizeFlags(data, hash uint) (uint32, uint32, error) {
	for _, f := range []struct {
		name string
		v    uint
	}{{"data-block-size", data}, {"hash-block-size", hash}} {
		if f.v > verity.MaxBlockSize {
			return 0, 0, fmt.Errorf("--%s %d: above %d", f.name, f.v, verity.MaxBlockSize)
		}
	}
	return uint32(data), uint32(hash), nil
}

// checkTreeFlags makes the tree flags given next to a superblock act: each
// must match what the superblock says (veritysetup ignores them).
func checkTreeFlags(fs *flag.FlagSet, p verity.Params, r *verity.Result) error {
	if !r.Superblock {
		return nil
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		var match bool
		var sb any
		switch f.Name {
		case "hash":
			match, sb = strings.EqualFold(p.Hash, r.Hash), r.Hash
		case "data-block-size":
			match, sb = p.DataBlockSize == r.DataBlockSize, r.DataBlockSize
		case "hash-block-size":
			match, sb = p.HashBlockSize == r.HashBlockSize, r.HashBlockSize
		case "salt":
			match, sb = bytes.Equal(p.Salt, r.Salt) && p.NoSalt == (len(r.Salt) == 0), r.SaltHex()
		case "format":
			match, sb = p.ChromeOS == (r.HashType == 0), r.HashType
		case "data-blocks":
			match, sb = p.DataBlocks == r.DataBlocks, r.DataBlocks
		default:
			return
		}
		if !match {
			bad = append(bad, fmt.Sprintf("--%s %s (superblock: %v)", f.Name, f.Value, sb))
		}
	})
	if len(bad) > 0 {
		return fmt.Errorf("the superblock at offset %d does not match %s", r.HashOffset, strings.Join(bad, ", "))
	}
	return nil
}

// verifyJSON is what `verity verify --json` prints.
type verifyJSON struct {
	treeJSON
	OK      bool         `json:"ok"`
	Error   string       `json:"error,omitempty"`
	Corrupt *corruptJSON `json:"corrupt,omitempty"`
}

// corruptJSON names the first corrupt block.
type corruptJSON struct {
	Device string `json:"device"` // "data" or "hash"
	Level  int    `json:"level"`  // tree level; -1 for a data block
	Block  uint64 `json:"block"`
	Offset int64  `json:"offset"`
	Reason string `json:"reason"`
}

func verityVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var vf verityFlags
	fs := newFlags("verity verify", stdout, stderr)
	addVerityFlags(fs, &vf, true)
	fs.Lookup("salt").Usage = "`SALT` in hex, or - for none (default: none; with a superblock, its salt)"
	bar := fs.Bool("progress", true, "draw a progress bar on a terminal")
	pos, err := parseFlags(fs, args, 3, 3)
	if err != nil {
		return err
	}
	p, err := vf.params(fs)
	if err != nil {
		return err
	}
	root, err := hex.DecodeString(pos[2])
	if err != nil || len(root) == 0 {
		return usageError(fs, "ROOTHASH %q is not hex", pos[2])
	}
	r, err := verityCheck(ctx, fs, pos[0], pos[1], vf.hashOffset, p, root, progressFor(stderr, *bar))
	if vf.json {
		if jerr := writeJSON(stdout, verifyReport(r, err)); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return &exitError{1, fmt.Errorf("verity verify %s: %w", pos[0], err)}
	}
	return nil
}

// progressFor returns a function making a bar for a data size, drawn on
// stderr when enabled and the size is worth it.
func progressFor(stderr io.Writer, enabled bool) func(size int64) *progress.Bar {
	return func(size int64) *progress.Bar {
		return progress.New(stderr, enabled && size >= verityBarMin, size, "verifying", true)
	}
}

// verityCheck opens the tree on hashPath and verifies dataPath with it. It
// returns the tree when it could be opened, with the verification error.
func verityCheck(ctx context.Context, fs *flag.FlagSet, dataPath, hashPath string, off int64, p verity.Params, root []byte, newBar func(int64) *progress.Bar) (*verity.Result, error) {
	data, size, err := openSized(dataPath, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	hash, err := os.Open(hashPath)
	if err != nil {
		return nil, err
	}
	defer hash.Close()
	r, err := verity.Open(hash, off, size, p, root)
	if err != nil {
		return nil, fmt.Errorf("tree in %s: %w", hashPath, err)
	}
	if err := checkTreeFlags(fs, p, r); err != nil {
		return r, err
	}
	bar := newBar(r.DataSize())
	defer bar.Finish()
	return r, r.VerifyContext(ctx, data, hash, bar.Set)
}

// verifyReport is the --json report; without a tree (it could not be
// read) only ok and error.
func verifyReport(r *verity.Result, err error) any {
	if r == nil {
		return struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}{false, err.Error()}
	}
	j := verifyJSON{treeJSON: treeOf(r, true), OK: err == nil}
	if err == nil {
		return j
	}
	j.Error = err.Error()
	var ce *verity.CorruptionError
	if errors.As(err, &ce) {
		dev := "hash"
		if ce.Level == verity.DataLevel {
			dev = "data"
		}
		j.Corrupt = &corruptJSON{Device: dev, Level: ce.Level, Block: ce.Block, Offset: ce.Offset, Reason: ce.Reason}
	}
	return j
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
		return fmt.Errorf("verity dump: %w", err)
	}
	defer f.Close()
	r, err := verity.Open(f, vf.hashOffset, 0, verity.Params{}, nil)
	if err != nil {
		return fmt.Errorf("verity dump %s: %w", pos[0], err)
	}
	return printTree(stdout, pos[0], r, false, vf.json)
}
