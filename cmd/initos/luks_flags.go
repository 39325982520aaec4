package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"initos/internal/progress"
	"initos/luks2"
)

// luksPBKDFFlags are cryptsetup's PBKDF flags.
type luksPBKDFFlags struct {
	pbkdf, hash               string
	memory, parallel, iterTMS int
	force                     int
}

func (p *luksPBKDFFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.pbkdf, "pbkdf", "argon2id", "keyslot `pbkdf`: argon2id, argon2i or pbkdf2")
	fs.StringVar(&p.hash, "hash", "sha256", "`hash` of pbkdf2, the anti-forensic splitter and the digest: "+strings.Join(luks2.SupportedHashes(), ", "))
	fs.IntVar(&p.memory, "pbkdf-memory", 0, "argon2 memory cost in `KiB` (default: calibrated, at most 1 GiB and half the RAM)")
	fs.IntVar(&p.parallel, "pbkdf-parallel", 0, "argon2 `lanes` (default min(4, CPUs))")
	fs.IntVar(&p.iterTMS, "iter-time", 0, "calibrate the pbkdf so that unlocking takes this many `ms` (default 2000)")
	fs.IntVar(&p.force, "pbkdf-force-iterations", 0, "fixed argon2 time cost or pbkdf2 `iterations` (no calibration)")
}

// value checks the flags (usage errors) and returns the PBKDF.
func (p *luksPBKDFFlags) value(fs *flag.FlagSet) (luks2.PBKDF, error) {
	if p.iterTMS != 0 && p.force != 0 {
		return luks2.PBKDF{}, usageError(fs, "--iter-time and --pbkdf-force-iterations exclude each other")
	}
	switch p.pbkdf {
	case "argon2id", "argon2i", "pbkdf2":
	default:
		return luks2.PBKDF{}, usageError(fs, "--pbkdf %q: want argon2id, argon2i or pbkdf2", p.pbkdf)
	}
	if !contains(luks2.SupportedHashes(), p.hash) {
		return luks2.PBKDF{}, usageError(fs, "--hash %q: not supported (supported: %s)", p.hash, strings.Join(luks2.SupportedHashes(), ", "))
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"pbkdf-memory", p.memory}, {"pbkdf-parallel", p.parallel}, {"iter-time", p.iterTMS}, {"pbkdf-force-iterations", p.force}} {
		if v.n < 0 {
			return luks2.PBKDF{}, usageError(fs, "--%s %d: negative", v.name, v.n)
		}
	}
	return luks2.PBKDF{Type: p.pbkdf, Hash: p.hash, Memory: p.memory, Parallel: p.parallel,
		Iterations: p.force, IterTime: time.Duration(p.iterTMS) * time.Millisecond}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// sizeFlag is a byte count with cryptsetup's suffixes (tools_string_to_size):
// none for bytes, s|S for 512-byte sectors, k|K, m|M, g|G, t|T (also with
// "iB") for powers of 1024, and "KB", "MB", ... for powers of 1000.
type sizeFlag uint64

func (s *sizeFlag) String() string { return strconv.FormatUint(uint64(*s), 10) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (uint64, error) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(v[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", v)
	}
	unit := v[i:]
	base := uint64(1024)
	switch {
	case unit == "":
		return n, nil
	case len(unit) == 2 && unit[1] == 'B':
		base = 1000
	case len(unit) == 3 && unit[1:] == "iB", len(unit) == 1:
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", v, unit)
	}
	exp := strings.IndexByte("kmgt", unit[0]|0x20) + 1
	mult := uint64(512)
	switch {
	case unit[0]|0x20 == 's' && len(unit) == 1:
	case exp > 0:
		mult = 1
		for range exp {
			mult *= base
		}
	default:
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", v, unit)
	}
	if n > 0 && n*mult/n != mult {
		return 0, fmt.Errorf("invalid size %q: overflows 64 bits", v)
	}
	return n * mult, nil
}

// luksStdin is where "-" key files are read from (a variable for tests).
var luksStdin io.Reader = os.Stdin

// readKeyFile reads a key file whole (like cryptsetup --key-file, no
// newline handling), at most maxKeyFile (8 MiB, cryptsetup's default
// limit); "-" is stdin. The caller clears the
// result after use.
func readKeyFile(flagName, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --%s is required", errUsage, flagName)
	}
	if path == "-" {
		return readKeyBounded(luksStdin, "--"+flagName+" - (stdin)")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read --%s: %w", flagName, err)
	}
	defer f.Close()
	return readKeyBounded(f, "--"+flagName+" "+path)
}

// readKeyBounded reads r to its end, failing beyond maxKeyFile bytes. Buffers
// outgrown while reading are cleared, so no partial copy of the key is left
// behind.
func readKeyBounded(r io.Reader, what string) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > maxKeyFile {
				clear(buf)
				return nil, fmt.Errorf("read %s: key file larger than %d bytes (8 MiB, cryptsetup's maximum)", what, maxKeyFile)
			}
			bigger := make([]byte, len(buf), 2*cap(buf))
			copy(bigger, buf)
			clear(buf)
			buf = bigger
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if len(buf) > maxKeyFile {
				clear(buf)
				return nil, fmt.Errorf("read %s: key file larger than %d bytes (8 MiB, cryptsetup's maximum)", what, maxKeyFile)
			}
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
	}
}

// luksTerminal reports whether stdin is a terminal (a variable for tests).
var luksTerminal = func() bool { return progress.IsTerminal(os.Stdin) }

// confirm asks on a terminal, like cryptsetup's yesDialog, and reports
// whether the user typed YES. Without a terminal it returns false.
func confirm(stderr io.Writer, question string) bool {
	if !luksTerminal() {
		return false
	}
	fmt.Fprintf(stderr, "\nWARNING!\n========\n%s\n\nAre you sure? (Type 'YES' in capital letters): ", question)
	line, _ := bufio.NewReader(luksStdin).ReadString('\n')
	return strings.TrimRight(line, "\r\n") == "YES"
}

// errNotConfirmed is returned when a destructive verb was not confirmed.
var errNotConfirmed = errors.New("operation aborted: not confirmed")

// destructive lets a destructive action proceed with --force (or
// --batch-mode), else after YES on a terminal; without a terminal it
// refuses with refusal, naming the flag that overrides it.
func destructive(stderr io.Writer, force bool, question, refusal string) error {
	switch {
	case force:
		return nil
	case luksTerminal():
		if confirm(stderr, question) {
			return nil
		}
		return errNotConfirmed
	}
	return fmt.Errorf("%s; use --force (or --batch-mode) to go ahead", refusal)
}

// batchFlags registers --force and cryptsetup's -q/--batch-mode, which
// both skip the confirmations.
func batchFlags(fs *flag.FlagSet, what string) *bool {
	force := fs.Bool("force", false, what+" without asking")
	fs.BoolVar(force, "batch-mode", false, "same as --force (cryptsetup's name)")
	fs.BoolVar(force, "q", false, "same as --force")
	return force
}

// newKDFBar shows the PBKDF calibration (a spinner) and derivation (a
// bar of argon2 blocks) on w when it is a terminal; Update is a
// luks2.Progress.
func newKDFBar(w io.Writer, enabled bool) *progress.Stages {
	return &progress.Stages{W: w, Enabled: enabled, Label: func(stage string) string {
		return map[string]string{"calibrate": "calibrating PBKDF", "derive": "deriving key"}[stage]
	}}
}

// luksExit maps library errors to cryptsetup's exit codes: 2 for a wrong
// passphrase, 5 for a busy device.
func luksExit(err error) error {
	switch {
	case errors.Is(err, luks2.ErrWrongPassphrase):
		return &exitError{2, err}
	case errors.Is(err, luks2.ErrBusy):
		return &exitError{5, err}
	}
	return err
}
