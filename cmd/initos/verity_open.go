package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/dm"
	"initos/loop"
	"initos/verity"
)

func init() {
	veritySubs["open"] = subcommand{"map a verity device: [flags] NAME DATA HASH ROOTHASH", verityOpen}
	veritySubs["close"] = subcommand{"remove a verity device: NAME", verityClose}
	describe("verity open", "[FLAGS] NAME DATA HASH ROOTHASH",
		"Maps DATA, checked against the tree on HASH and ROOTHASH (hex), as the read-only device-mapper device /dev/mapper/NAME, like veritysetup open. Regular files are attached to read-only loop devices that go away with the mapping. The tree's parameters come from the superblock at --hash-offset (flags given with a superblock must match it), or from the flags with --no-superblock. Needs root and the dm-verity kernel module.")
	describe("verity close", "NAME", "Removes the device-mapper device NAME, like veritysetup close.")
}

// verityOpenFlags are veritysetup open's options.
type verityOpenFlags struct {
	hashOffset                      int64
	noSuperblock                    bool
	format                          uint
	hash, salt                      string
	dataBlockSize, hashBlockSize    uint
	dataBlocks                      uint64
	ignoreCorruption, restart, pnic bool
	ignoreZero, atMostOnce          bool
	sigKeyDesc                      string
}

func (o *verityOpenFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&o.hashOffset, "hash-offset", 0, "byte `offset` of the superblock (or tree) on HASH")
	fs.BoolVar(&o.noSuperblock, "no-superblock", false, "HASH has no superblock: take the parameters from the flags below")
	fs.UintVar(&o.format, "format", 1, "hash `type` without superblock: 1 normal, 0 Chrome OS")
	fs.StringVar(&o.hash, "hash", verity.DefaultHash, "hash `algorithm` without superblock")
	fs.StringVar(&o.salt, "salt", "-", "`hex` salt without superblock (- for none)")
	fs.UintVar(&o.dataBlockSize, "data-block-size", verity.DefaultBlockSize, "data block `bytes` without superblock")
	fs.UintVar(&o.hashBlockSize, "hash-block-size", verity.DefaultBlockSize, "hash block `bytes` without superblock")
	fs.Uint64Var(&o.dataBlocks, "data-blocks", 0, "`number` of data blocks without superblock (default: all of DATA)")
	fs.BoolVar(&o.ignoreCorruption, "ignore-corruption", false, "log corruption but return the data")
	fs.BoolVar(&o.restart, "restart-on-corruption", false, "restart the machine on corruption")
	fs.BoolVar(&o.pnic, "panic-on-corruption", false, "panic the kernel on corruption")
	fs.BoolVar(&o.ignoreZero, "ignore-zero-blocks", false, "do not verify blocks expected to be zero")
	fs.BoolVar(&o.atMostOnce, "check-at-most-once", false, "verify each data block only once")
	fs.StringVar(&o.sigKeyDesc, "root-hash-sig-key-desc", "", "`description` of a keyring key holding the root hash signature")
}

func (o *verityOpenFlags) params(fs *flag.FlagSet) (verity.Params, error) {
	p := verity.Params{
		NoSuperblock: o.noSuperblock,
		Hash:         o.hash,
		ChromeOS:     o.format == 0,
		DataBlocks:   o.dataBlocks,
		NoSalt:       o.salt == "-",
	}
	var err error
	if p.DataBlockSize, p.HashBlockSize, err = blockSizeFlags(o.dataBlockSize, o.hashBlockSize); err != nil {
		return p, usageError(fs, "%v", err)
	}
	if o.format > 1 {
		return p, usageError(fs, "--format %d: want 0 or 1", o.format)
	}
	if !p.NoSalt {
		salt, err := hex.DecodeString(o.salt)
		if err != nil {
			return p, usageError(fs, "--salt: %v", err)
		}
		p.Salt = salt
	}
	return p, nil
}

func (o *verityOpenFlags) corruption(fs *flag.FlagSet) (dm.CorruptionMode, error) {
	modes := []struct {
		on   bool
		mode dm.CorruptionMode
	}{{o.ignoreCorruption, dm.CorruptionIgnore}, {o.restart, dm.CorruptionRestart}, {o.pnic, dm.CorruptionPanic}}
	mode, n := dm.CorruptionEIO, 0
	for _, m := range modes {
		if m.on {
			mode, n = m.mode, n+1
		}
	}
	if n > 1 {
		return mode, usageError(fs, "--ignore-corruption, --restart-on-corruption and --panic-on-corruption exclude each other")
	}
	return mode, nil
}

func verityOpen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verity open", stdout, stderr)
	var o verityOpenFlags
	o.register(fs)
	pos, err := parseFlags(fs, args, 4, 4)
	if err != nil {
		return err
	}
	name, data, hashPath := pos[0], pos[1], pos[2]
	root, err := hex.DecodeString(pos[3])
	if err != nil || len(root) == 0 {
		return usageError(fs, "ROOTHASH %q is not hex", pos[3])
	}
	mode, err := o.corruption(fs)
	if err != nil {
		return err
	}
	if err := dm.CheckName(name); err != nil {
		return usageError(fs, "%v", err)
	}
	p, err := o.params(fs)
	if err != nil {
		return err
	}
	tree, err := readTree(fs, data, hashPath, o.hashOffset, p, root)
	if err != nil {
		return fmt.Errorf("verity open %s: %w", name, err)
	}
	return activateVerity(name, data, hashPath, tree, mode, &o)
}

// readTree describes the tree from HASH's superblock (or the flags).
func readTree(fs *flag.FlagSet, data, hashPath string, off int64, p verity.Params, root []byte) (*verity.Result, error) {
	dataSize, err := deviceSize(data)
	if err != nil {
		return nil, err
	}
	hf, err := os.Open(hashPath)
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	r, err := verity.Open(hf, off, dataSize, p, root)
	if err != nil {
		return nil, err
	}
	return r, checkTreeFlags(fs, p, r)
}

// deviceSize is the size of a regular file or block device.
func deviceSize(path string) (int64, error) {
	f, size, err := openSized(path, os.O_RDONLY)
	if err != nil {
		return 0, err
	}
	f.Close()
	return size, nil
}

// activateVerity attaches regular files to read-only autoclear loop
// devices (DATA and HASH share one when they are the same file), creates
// the device and lets go of the loops: the kernel detaches them when the
// dm device is removed.
func activateVerity(name, data, hashPath string, tree *verity.Result, mode dm.CorruptionMode, o *verityOpenFlags) error {
	var loops []*loop.Device
	defer func() {
		for _, l := range loops {
			l.Close()
		}
	}()
	devs := map[string]string{}
	for _, path := range []string{data, hashPath} {
		if _, ok := devs[path]; ok {
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("verity open %s: %w", name, err)
		}
		devs[path] = path
		if st.Mode().IsRegular() {
			l, err := loop.Attach(path, loop.Config{ReadOnly: true, Autoclear: true})
			if err != nil {
				return fmt.Errorf("verity open %s: %w", name, err)
			}
			loops = append(loops, l)
			devs[path] = l.Path
		}
	}
	target := verityTarget(tree, devs[data], devs[hashPath])
	target.OnCorruption = mode
	target.IgnoreZeroBlocks = o.ignoreZero
	target.CheckAtMostOnce = o.atMostOnce
	target.RootHashSigKeyDesc = o.sigKeyDesc
	_, err := dm.CreateDevice(name, verityUUID(tree, name), true, target)
	return err
}

// verityTarget maps a described tree with device-mapper.
func verityTarget(r *verity.Result, dataDev, hashDev string) dm.Verity {
	return dm.Verity{
		LegacyFormat:   r.HashType == 0,
		DataDevice:     dataDev,
		HashDevice:     hashDev,
		DataBlockSize:  r.DataBlockSize,
		HashBlockSize:  r.HashBlockSize,
		DataBlocks:     r.DataBlocks,
		HashStartBlock: r.HashStartBlock,
		Algorithm:      r.Hash,
		RootDigest:     r.RootHash,
		Salt:           r.Salt,
	}
}

// verityUUID is the dm UUID veritysetup gives the device
// ("CRYPT-VERITY-<uuid hex>-<name>"), or none without a superblock UUID.
func verityUUID(r *verity.Result, name string) string {
	if !r.Superblock || r.UUID.IsZero() {
		return ""
	}
	u := "CRYPT-VERITY-" + strings.ReplaceAll(r.UUID.String(), "-", "") + "-" + name
	if len(u) > 128 {
		return ""
	}
	return u
}

func verityClose(_ context.Context, args []string, stdout, stderr io.Writer) error {
	pos, err := parseFlags(newFlags("verity close", stdout, stderr), args, 1, 1)
	if err != nil {
		return err
	}
	if err := dm.RemoveDevice(pos[0]); err != nil {
		return fmt.Errorf("verity close: %w", err)
	}
	return nil
}
