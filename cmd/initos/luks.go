package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"initos/luks2"
)

func init() {
	register("luks", "LUKS2 volumes (like cryptsetup)", runLuks)
	describe("luks format", "[FLAGS] --key-file F DEVICE",
		"Creates a LUKS2 volume on DEVICE (a block device or image file) with keyslot 0 for the passphrase in --key-file, and prints its UUID. "+
			"Like cryptsetup luksFormat: the device is opened exclusively and refused while mounted, mapped or backing a loop device (exit 5); "+
			"a device that already carries a filesystem, LUKS or partition-table signature is refused unless --force (or -q/--batch-mode), or YES is typed on a terminal. "+
			"By default the argon2id costs are calibrated so that unlocking takes --iter-time (2 s) of CPU time per lane, with at most 1 GiB (half the RAM). "+
			"Everything is computed before the device is written, so an interrupt (exit 130/143) or a failure leaves the old volume intact. "+
			"Sizes take cryptsetup's suffixes (16k, 4m, 1MB, 8s).")
	describe("luks test-passphrase", "[--key-slot N] [--header H] [--json] --key-file F DEVICE",
		"Exits 0 if a keyslot opens with the passphrase (printing which), 2 if none does. Keyslots this implementation cannot open (an unsupported hash, cipher or KDF) are skipped and named; --json also lists each keyslot's usability.")
	describe("luks dump", "[--json] DEVICE",
		"Prints the header: segments, keyslots (with why any is unusable), digests, tokens, a damaged or stale header copy, and unsupported volume features. --json prints the JSON metadata, as cryptsetup luksDump --dump-json-metadata.")
}

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

// luksFormatFlags are luks format's flags besides the PBKDF ones.
type luksFormatFlags struct {
	o                  luks2.FormatOptions
	typ, keyFile       string
	header             string
	offset             uint64
	metaSize, ksSize   sizeFlag
	force, showProgess *bool
}

func (f *luksFormatFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.typ, "type", "luks2", "header `type` (only luks2)")
	fs.StringVar(&f.keyFile, "key-file", "", "passphrase `file` for keyslot 0 (- for stdin, at most 8 MiB)")
	fs.StringVar(&f.header, "header", "", "write a detached header to this `file` (DEVICE holds only data)")
	fs.Uint64Var(&f.offset, "offset", 0, "data offset in 512-byte `sectors`")
	fs.StringVar(&f.o.Cipher, "cipher", "aes-xts-plain64", "data `cipher`: "+strings.Join(luks2.Ciphers, ", "))
	fs.IntVar(&f.o.KeySize, "key-size", 0, "volume key `bits` (default 512 for xts, 256 otherwise)")
	fs.IntVar(&f.o.SectorSize, "sector-size", 4096, "encryption sector `bytes`")
	fs.StringVar(&f.o.Label, "label", "", "header `label`")
	fs.StringVar(&f.o.Subsystem, "subsystem", "", "header `subsystem`")
	fs.StringVar(&f.o.UUID, "uuid", "", "volume `UUID` (default random)")
	fs.Var(&f.metaSize, "luks2-metadata-size", "`size` of one header copy, 16k .. 4m")
	fs.Var(&f.ksSize, "luks2-keyslots-size", "keyslots area `size` (default: up to the data offset, at most 128m)")
	f.force = batchFlags(fs, "format a device that carries a signature")
	f.showProgess = fs.Bool("progress", true, "show the PBKDF calibration on a terminal")
}

func luksFormat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks format", stdout, stderr)
	var f luksFormatFlags
	var pf luksPBKDFFlags
	pf.register(fs)
	f.register(fs)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if err := f.check(fs, &pf); err != nil {
		return err
	}
	target := pos[0]
	if f.header != "" {
		f.o.Detached, target = true, f.header
	}
	dev, err := luksOpenForFormat(target, *f.force, stderr)
	if err != nil {
		return luksExit(err)
	}
	if dev != nil {
		defer dev.Close()
	}
	pass, err := readKeyFile("key-file", f.keyFile)
	if err != nil {
		return err
	}
	defer clear(pass)
	bar := newKDFBar(stderr, *f.showProgess)
	f.o.Progress = bar.Update
	var h *luks2.Header
	if dev != nil {
		h, err = luks2.FormatDevice(ctx, dev, pass, f.o)
	} else {
		h, err = luks2.FormatFileContext(ctx, target, 0, pass, f.o)
	}
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h.UUID())
	return nil
}

// check validates the format flags: usage errors exit 2.
func (f *luksFormatFlags) check(fs *flag.FlagSet, pf *luksPBKDFFlags) error {
	if f.typ != "luks2" {
		return usageError(fs, "--type %q: only luks2 is supported (LUKS1 is not)", f.typ)
	}
	if !slices.Contains(luks2.Ciphers, f.o.Cipher) {
		return usageError(fs, "--cipher %q: not supported (supported: %s)", f.o.Cipher, strings.Join(luks2.Ciphers, ", "))
	}
	if f.keyFile == "" {
		return usageError(fs, "--key-file is required")
	}
	if f.offset > math.MaxUint64/512 {
		return usageError(fs, "--offset %d: too large", f.offset)
	}
	var err error
	if f.o.PBKDF, err = pf.value(fs); err != nil {
		return err
	}
	f.o.DataOffset, f.o.MetadataSize, f.o.KeyslotsSize = f.offset*512, uint64(f.metaSize), uint64(f.ksSize)
	return nil
}

// luksOpenForFormat opens an existing device exclusively and checks it for
// signatures (nil when path does not exist: a new header file).
func luksOpenForFormat(path string, force bool, stderr io.Writer) (*os.File, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	f, err := luks2.OpenExclusive(path)
	if err != nil {
		return nil, err
	}
	sig, err := luks2.DetectSignature(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("probe %s: %w", path, err)
	}
	question := fmt.Sprintf("This will overwrite data on %s irrevocably.", path)
	refusal := ""
	if sig != "" {
		question = fmt.Sprintf("%s contains a %s signature.\n%s", path, sig, question)
		refusal = fmt.Sprintf("%s contains a %s signature", path, sig)
	}
	if sig != "" || luksTerminal() {
		if err := destructive(stderr, force, question, refusal); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
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
// path (the device or its detached header) and reads its header. The
// caller clears the passphrase.
func openWithPass(path string, write bool, keyFile string) (*os.File, *luks2.Header, []byte, error) {
	pass, err := readKeyFile("key-file", keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	f, h, err := openHeader(path, write)
	if err != nil {
		clear(pass)
		return nil, nil, nil, err
	}
	return f, h, pass, nil
}

// wrongKey maps ErrWrongPassphrase to exit status 2, like cryptsetup.
func wrongKey(err error) error { return luksExit(err) }

// keyslotState is one keyslot in test-passphrase --json.
type keyslotState struct {
	ID     int    `json:"id"`
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
}

// testPassphraseResult is test-passphrase --json's output.
type testPassphraseResult struct {
	Device   string         `json:"device"`
	Unlocked bool           `json:"unlocked"`
	Keyslot  *int           `json:"keyslot"`
	Error    string         `json:"error,omitempty"`
	Keyslots []keyslotState `json:"keyslots"`
}

func luksTestPassphrase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks test-passphrase", stdout, stderr)
	keyFile := fs.String("key-file", "", "passphrase `file` (- for stdin)")
	header := fs.String("header", "", "detached header `file`")
	slot := fs.Int("key-slot", -1, "try only this keyslot")
	asJSON := fs.Bool("json", false, "print the result and each keyslot's usability as JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	f, h, pass, err := openWithPass(orDefault(*header, pos[0]), false, *keyFile)
	if err != nil {
		return err
	}
	defer f.Close()
	defer clear(pass)
	var vk *luks2.Secret
	n := *slot
	if n >= 0 {
		vk, err = h.UnlockSlotContext(ctx, f, strconv.Itoa(n), pass)
	} else {
		vk, n, err = h.UnlockContext(ctx, f, pass)
	}
	vk.Destroy()
	if *asJSON {
		if jerr := writeJSON(stdout, testPassphraseJSON(pos[0], h, n, err)); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return luksExit(err)
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "Key slot %d unlocked.\n", n)
	}
	return nil
}

func testPassphraseJSON(dev string, h *luks2.Header, slot int, err error) testPassphraseResult {
	r := testPassphraseResult{Device: dev, Unlocked: err == nil, Keyslots: []keyslotState{}}
	if err == nil {
		r.Keyslot = &slot
	} else {
		r.Error = err.Error()
	}
	for _, id := range h.KeyslotIDs() {
		s := keyslotState{ID: id, Usable: true}
		if uerr := h.KeyslotUsable(id); uerr != nil {
			s.Usable, s.Reason = false, uerr.Error()
		}
		r.Keyslots = append(r.Keyslots, s)
	}
	return r
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
		return writeJSON(stdout, h.Meta)
	}
	return printLuksHeader(stdout, h)
}
