package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"initos/luks2"
)

func init() { register("luks", "LUKS2 volumes (like cryptsetup)", runLuks) }

// luksSubs is the "initos luks" verb table. Other files add verbs from
// their init functions (open/close, enroll-tpm2, unlock-tpm2).
var luksSubs = map[string]subcommand{
	"format":           {"create a LUKS2 header: [flags] --key-file F DEVICE", luksFormat},
	"test-passphrase":  {"exit 0 if a keyslot opens: --key-file F DEVICE", luksTestPassphrase},
	"dump":             {"print the header: [--json] DEVICE", luksDump},
	"add-key":          {"add a keyslot: --key-file OLD|--volume-key-file VK DEVICE NEWKEYFILE", luksAddKey},
	"remove-key":       {"remove the keyslot a key opens: --key-file F DEVICE", luksRemoveKey},
	"change-key":       {"change a passphrase: --key-file OLD DEVICE NEWKEYFILE", luksChangeKey},
	"kill-slot":        {"remove a keyslot: DEVICE SLOT", luksKillSlot},
	"token":            {"tokens: add --json-file F DEVICE | remove --token-id N DEVICE | list DEVICE", luksToken},
	"header-backup":    {"save the header: --header-backup-file F DEVICE", luksHeaderBackup},
	"header-restore":   {"restore a header: --header-backup-file F DEVICE", luksHeaderRestore},
	"repair":           {"rewrite both header copies from the valid one: DEVICE", luksRepair},
	"add-recovery-key": {"add a systemd-style recovery key and print it: --key-file F DEVICE", luksAddRecoveryKey},
}

func runLuks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "luks", luksSubs, args, stdout, stderr)
}

// luksPBKDFFlags are cryptsetup's PBKDF flags.
type luksPBKDFFlags struct {
	pbkdf, hash               string
	memory, parallel, iterTMS int
	force                     int
}

func (p *luksPBKDFFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.pbkdf, "pbkdf", "argon2id", "keyslot `pbkdf`: argon2id, argon2i or pbkdf2")
	fs.StringVar(&p.hash, "hash", "sha256", "pbkdf2 `hash`")
	fs.IntVar(&p.memory, "pbkdf-memory", 0, "argon2 memory cost in `KiB` (default 1 GiB, at most half the RAM)")
	fs.IntVar(&p.parallel, "pbkdf-parallel", 0, "argon2 `lanes` (default min(4, CPUs))")
	fs.IntVar(&p.iterTMS, "iter-time", 0, "benchmark the pbkdf for this many `ms` (default 2000)")
	fs.IntVar(&p.force, "pbkdf-force-iterations", 0, "fixed argon2 time cost or pbkdf2 `iterations` (no benchmark)")
}

func (p *luksPBKDFFlags) value() (luks2.PBKDF, error) {
	if p.iterTMS != 0 && p.force != 0 {
		return luks2.PBKDF{}, fmt.Errorf("%w: --iter-time and --pbkdf-force-iterations exclude each other", errUsage)
	}
	return luks2.PBKDF{Type: p.pbkdf, Hash: p.hash, Memory: p.memory, Parallel: p.parallel,
		Iterations: p.force, IterTime: time.Duration(p.iterTMS) * time.Millisecond}, nil
}

// readKeyFile reads a key file whole (like cryptsetup --key-file, no
// newline handling); "-" is stdin.
func readKeyFile(flagName, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --%s is required", errUsage, flagName)
	}
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --%s: %w", flagName, err)
	}
	return b, nil
}

func luksFormat(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks format", stdout, stderr)
	var o luks2.FormatOptions
	var pf luksPBKDFFlags
	pf.register(fs)
	typ := fs.String("type", "luks2", "header `type` (only luks2)")
	keyFile := fs.String("key-file", "", "passphrase `file` for keyslot 0")
	header := fs.String("header", "", "write a detached header to this `file` (DEVICE holds only data)")
	offset := fs.Uint64("offset", 0, "data offset in 512-byte `sectors`")
	fs.StringVar(&o.Cipher, "cipher", "aes-xts-plain64", "data `cipher`")
	fs.IntVar(&o.KeySize, "key-size", 0, "volume key `bits` (default 512 for xts, 256 otherwise)")
	fs.IntVar(&o.SectorSize, "sector-size", 4096, "encryption sector `bytes`")
	fs.StringVar(&o.Label, "label", "", "header `label`")
	fs.StringVar(&o.Subsystem, "subsystem", "", "header `subsystem`")
	fs.StringVar(&o.UUID, "uuid", "", "volume `UUID` (default random)")
	fs.Uint64Var(&o.MetadataSize, "luks2-metadata-size", 0, "`bytes` of one header copy, 16384 .. 4194304")
	fs.Uint64Var(&o.KeyslotsSize, "luks2-keyslots-size", 0, "keyslots area `bytes`")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *typ != "luks2" {
		return fmt.Errorf("%w: --type %q: only luks2 is supported", errUsage, *typ)
	}
	if o.PBKDF, err = pf.value(); err != nil {
		return err
	}
	pass, err := readKeyFile("key-file", *keyFile)
	if err != nil {
		return err
	}
	if *offset > math.MaxUint64/512 {
		return fmt.Errorf("%w: --offset %d: too large", errUsage, *offset)
	}
	o.DataOffset = *offset * 512
	target := pos[0]
	if *header != "" {
		o.Detached, target = true, *header
	}
	h, err := luks2.FormatFile(target, 0, pass, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h.UUID())
	return nil
}

// openHeader opens DEVICE (or --header) and reads its header.
func openHeader(path string, write bool) (*os.File, *luks2.Header, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, nil, err
	}
	h, err := luks2.ReadHeader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, h, nil
}

// openWithPass reads the passphrase in the --key-file keyFile, then opens
// path (the device or its detached header) and reads its header.
func openWithPass(path string, write bool, keyFile string) (*os.File, *luks2.Header, []byte, error) {
	pass, err := readKeyFile("key-file", keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	f, h, err := openHeader(path, write)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, h, pass, nil
}

// wrongKey maps ErrWrongPassphrase to exit status 2, like cryptsetup.
func wrongKey(err error) error {
	if errors.Is(err, luks2.ErrWrongPassphrase) {
		return &exitError{2, err}
	}
	return err
}

func luksTestPassphrase(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks test-passphrase", stdout, stderr)
	keyFile := fs.String("key-file", "", "passphrase `file`")
	header := fs.String("header", "", "detached header `file`")
	slot := fs.Int("key-slot", -1, "try only this keyslot")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, pass, err := openWithPass(orDefault(*header, pos[0]), false, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	var vk *luks2.Secret
	n := *slot
	if n >= 0 {
		vk, err = h.UnlockSlot(f, strconv.Itoa(n), pass)
	} else {
		vk, n, err = h.Unlock(f, pass)
	}
	if err != nil {
		return wrongKey(err)
	}
	vk.Destroy()
	fmt.Fprintf(stdout, "Key slot %d unlocked.\n", n)
	return nil
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

func luksDump(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks dump", stdout, stderr)
	asJSON := fs.Bool("json", false, "print the JSON metadata")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, err := openHeader(pos[0], false)
	if err != nil {
		return err
	}
	defer f.Close()
	if *asJSON {
		b, err := json.MarshalIndent(h.Meta, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	return printLuksHeader(stdout, h)
}
