package install

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Size is a byte count. In JSON and on the command line it is a number of
// bytes or a string with a binary unit: "500MiB", "500M", "2GiB", "2G",
// "512K".
type Size int64

var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40},
	{"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}, {"B", 0},
}

// ParseSize parses a size (see Size).
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	shift := uint(0)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, shift = strings.TrimSpace(rest), u.shift
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("size %q: not a number of bytes or a number with K, M, G, T (or KiB, MiB, GiB, TiB)", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(n << shift), nil
}

// String formats s with the largest binary unit that divides it ("0"
// for zero, which is "the default" in flags).
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if s != 0 && s%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", s>>u.shift, u.suffix)
		}
	}
	return fmt.Sprintf("%d B", int64(s))
}

// Human formats s rounded to one decimal, for plans and summaries.
func (s Size) Human() string {
	f := float64(s)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", int64(s))
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

// UnmarshalJSON accepts a number of bytes or a size string.
func (s *Size) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		return s.Set(str)
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil || n < 0 {
		return fmt.Errorf("size %s: not a number of bytes or a size string", b)
	}
	*s = Size(n)
	return nil
}

// MarshalJSON writes the number of bytes.
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(int64(s)) }
