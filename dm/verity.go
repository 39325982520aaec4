package dm

import (
	"errors"
	"fmt"
	"strconv"
)

// Verity is a dm-verity target: a read-only view of DataDevice whose every
// block is checked against the hash tree on HashDevice. Kernel:
// Documentation/admin-guide/device-mapper/verity.rst. The table must be
// loaded read-only (the kernel refuses a writable verity table).
//
// Zero values of the optional fields are the kernel defaults; block sizes
// and the algorithm default to what veritysetup uses (4096, sha256).
type Verity struct {
	// LegacyFormat selects hash type 0 (the original Chrome OS format);
	// false is hash type 1, the format veritysetup writes by default.
	LegacyFormat   bool
	DataDevice     string // path or "MAJOR:MINOR"
	HashDevice     string // path or "MAJOR:MINOR"; may equal DataDevice
	DataBlockSize  uint32 // bytes; 0 means 4096
	HashBlockSize  uint32 // bytes; 0 means 4096
	DataBlocks     uint64 // number of data blocks covered by the tree
	HashStartBlock uint64 // first block of the tree (root level) on HashDevice, in hash blocks
	Algorithm      string // hash algorithm; "" means "sha256"
	RootDigest     []byte // the root hash
	Salt           []byte // nil means no salt ("-")

	OnCorruption       CorruptionMode // what to do when a block fails verification
	IgnoreZeroBlocks   bool           // ignore_zero_blocks
	CheckAtMostOnce    bool           // check_at_most_once
	TryVerifyInTasklet bool           // try_verify_in_tasklet (Linux 6.0+)
	RootHashSigKeyDesc string         // root_hash_sig_key_desc <desc>; "" means none
	FEC                *VerityFEC     // forward error correction; nil means none
}

// CorruptionMode is the verity target's reaction to a corrupt block.
type CorruptionMode int

// Corruption modes; the zero value is the kernel default (EIO).
const (
	CorruptionEIO     CorruptionMode = iota // fail the read with EIO
	CorruptionIgnore                        // ignore_corruption: log and return the data
	CorruptionRestart                       // restart_on_corruption: reboot the machine
	CorruptionPanic                         // panic_on_corruption: panic the kernel
)

var corruptionArgs = [...]string{CorruptionIgnore: "ignore_corruption", CorruptionRestart: "restart_on_corruption", CorruptionPanic: "panic_on_corruption"}

// VerityFEC locates Reed-Solomon parity data for a Verity target.
type VerityFEC struct {
	Device string // use_fec_from_device <dev>
	Roots  uint32 // fec_roots: parity bytes per 255-byte codeword (2..24)
	Blocks uint64 // fec_blocks: data + hash blocks the parity covers
	Start  uint64 // fec_start: first parity block on Device, in data blocks
}

const defaultVerityBlock = 4096

// Type implements Target.
func (Verity) Type() string { return "verity" }

// Sectors implements Target: the data area's length.
func (v Verity) Sectors() uint64 {
	return v.DataBlocks * uint64(orDefault(v.DataBlockSize, defaultVerityBlock)) / SectorSize
}

func (Verity) sealed() {}

func orDefault(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

// Params implements Target: "<version> <dev> <hash_dev> <data_block_size>
// <hash_block_size> <num_data_blocks> <hash_start_block> <algorithm>
// <digest> <salt> [<#opt_params> <opt_params>]".
func (v Verity) Params() (string, error) {
	if err := v.check(); err != nil {
		return "", err
	}
	version := 1
	if v.LegacyFormat {
		version = 0
	}
	alg := v.Algorithm
	if alg == "" {
		alg = "sha256"
	}
	base := fmt.Sprintf("%d %s %s %d %d %d %d %s %s %s", version, v.DataDevice, v.HashDevice,
		orDefault(v.DataBlockSize, defaultVerityBlock), orDefault(v.HashBlockSize, defaultVerityBlock),
		v.DataBlocks, v.HashStartBlock, alg, hexOrDash(v.RootDigest), hexOrDash(v.Salt))
	return withOptions(base, v.options()), nil
}

func (v Verity) check() error {
	for _, w := range []struct{ what, s string }{
		{"verity data device", v.DataDevice},
		{"verity hash device", v.HashDevice},
	} {
		if err := checkWord(w.what, w.s); err != nil {
			return err
		}
	}
	if v.Algorithm != "" {
		if err := checkWord("verity algorithm", v.Algorithm); err != nil {
			return err
		}
	}
	for _, b := range []struct {
		what string
		n    uint32
	}{{"data", v.DataBlockSize}, {"hash", v.HashBlockSize}} {
		if b.n != 0 && (b.n < SectorSize || b.n&(b.n-1) != 0) {
			return fmt.Errorf("verity %s block size %d: not a power of two >= 512", b.what, b.n)
		}
	}
	if v.DataBlocks == 0 {
		return errors.New("verity data blocks: 0")
	}
	if len(v.RootDigest) == 0 {
		return errors.New("verity root digest is empty")
	}
	if v.OnCorruption < 0 || int(v.OnCorruption) >= len(corruptionArgs) {
		return fmt.Errorf("verity corruption mode %d: unknown", v.OnCorruption)
	}
	if v.RootHashSigKeyDesc != "" {
		if err := checkWord("verity root hash signature key description", v.RootHashSigKeyDesc); err != nil {
			return err
		}
	}
	if v.FEC != nil {
		return checkWord("verity FEC device", v.FEC.Device)
	}
	return nil
}

// options renders the optional arguments; the kernel counts words, so
// "fec_roots 2" is two.
func (v Verity) options() []string {
	var opts []string
	if v.OnCorruption != CorruptionEIO {
		opts = append(opts, corruptionArgs[v.OnCorruption])
	}
	if v.IgnoreZeroBlocks {
		opts = append(opts, "ignore_zero_blocks")
	}
	if v.CheckAtMostOnce {
		opts = append(opts, "check_at_most_once")
	}
	if v.TryVerifyInTasklet {
		opts = append(opts, "try_verify_in_tasklet")
	}
	if f := v.FEC; f != nil {
		opts = append(opts, "use_fec_from_device", f.Device,
			"fec_roots", strconv.FormatUint(uint64(f.Roots), 10),
			"fec_blocks", strconv.FormatUint(f.Blocks, 10),
			"fec_start", strconv.FormatUint(f.Start, 10))
	}
	if v.RootHashSigKeyDesc != "" {
		opts = append(opts, "root_hash_sig_key_desc", v.RootHashSigKeyDesc)
	}
	return opts
}
