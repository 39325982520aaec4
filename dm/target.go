package dm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SectorSize is the unit of device-mapper table starts and lengths.
const SectorSize = 512

// Target is one segment of a device-mapper table: a target type and its
// constructor parameters. The set of implementations is closed: Linear,
// Crypt, Verity, and Spec for anything else (a table line as text).
type Target interface {
	// Type is the kernel target type name ("linear", "crypt", "verity").
	Type() string
	// Sectors is the length of the segment in 512-byte sectors.
	Sectors() uint64
	// Params renders the constructor parameter string the kernel parses.
	Params() (string, error)

	sealed()
}

// Spec is one table line as the kernel reports it (DM_TABLE_STATUS) and
// as dmsetup prints it: "START LENGTH TYPE PARAMS". As a Target its Start
// must equal the sum of the lengths of the targets before it.
type Spec struct {
	Start  uint64 // first sector
	Length uint64 // length in sectors
	Kind   string // target type name
	Args   string // parameters (constructor arguments or status)
}

// Type implements Target.
func (s Spec) Type() string { return s.Kind }

// Sectors implements Target.
func (s Spec) Sectors() uint64 { return s.Length }

// Params implements Target.
func (s Spec) Params() (string, error) { return s.Args, nil }

func (Spec) sealed() {}

// String renders s as dmsetup prints a table line.
func (s Spec) String() string {
	line := fmt.Sprintf("%d %d %s", s.Start, s.Length, s.Kind)
	if s.Args != "" {
		line += " " + s.Args
	}
	return line
}

// ParseTable parses a table in dmsetup's text form: one "START LENGTH
// TYPE [PARAMS...]" line per target; blank lines and lines starting with
// '#' are ignored. It checks the targets are contiguous from sector 0, as
// the kernel requires.
func ParseTable(text string) ([]Spec, error) {
	var specs []Spec
	var next uint64
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("parse table line %d: %w", i+1, err)
		}
		if s.Start != next {
			return nil, fmt.Errorf("parse table line %d: target starts at sector %d, want %d (targets must be contiguous from 0)", i+1, s.Start, next)
		}
		next += s.Length
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, errors.New("parse table: no target lines")
	}
	return specs, nil
}

func parseLine(line string) (Spec, error) {
	f := strings.Fields(line)
	if len(f) < 3 {
		return Spec{}, fmt.Errorf("%q: want START LENGTH TYPE [PARAMS]", line)
	}
	start, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return Spec{}, fmt.Errorf("start sector %q: %w", f[0], err)
	}
	length, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return Spec{}, fmt.Errorf("length %q: %w", f[1], err)
	}
	if length == 0 {
		return Spec{}, errors.New("length is 0")
	}
	if err := checkType(f[2]); err != nil {
		return Spec{}, err
	}
	return Spec{Start: start, Length: length, Kind: f[2], Args: strings.Join(f[3:], " ")}, nil
}

// maxTypeName is DM_MAX_TYPE_NAME including the terminating NUL.
const maxTypeName = 16

func checkType(t string) error {
	if t == "" || len(t) >= maxTypeName || strings.ContainsAny(t, " \t\n\x00") {
		return fmt.Errorf("target type %q: must be 1..%d bytes without spaces", t, maxTypeName-1)
	}
	return nil
}

// Linear maps Length sectors onto Device starting at sector Offset.
// Kernel: Documentation/admin-guide/device-mapper/linear.rst.
type Linear struct {
	Length uint64 // sectors
	Device string // path or "MAJOR:MINOR"
	Offset uint64 // first sector on Device
}

// Type implements Target.
func (Linear) Type() string { return "linear" }

// Sectors implements Target.
func (l Linear) Sectors() uint64 { return l.Length }

// Params implements Target: "<dev path> <offset>".
func (l Linear) Params() (string, error) {
	if err := checkWord("linear device", l.Device); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %d", l.Device, l.Offset), nil
}

func (Linear) sealed() {}

// checkWord rejects an empty argument or one the kernel would split.
func checkWord(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if strings.ContainsAny(s, " \t\n\x00") {
		return fmt.Errorf("%s %q contains white space or NUL", what, s)
	}
	return nil
}

// hexOrDash renders b as lower-case hex, or "-" when empty (the kernel's
// spelling of "no salt").
func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// withOptions appends "<#opt_params> <opt_params>" when there are any.
func withOptions(base string, opts []string) string {
	if len(opts) == 0 {
		return base
	}
	return base + " " + strconv.Itoa(len(opts)) + " " + strings.Join(opts, " ")
}
