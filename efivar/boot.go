package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// BootName returns the variable name of boot entry n ("Boot%04X").
func BootName(n uint16) string { return fmt.Sprintf("Boot%04X", n) }

// ParseBootName returns n for a variable named "Boot####" (four upper-case
// hex digits).
func ParseBootName(name string) (uint16, bool) {
	hex, ok := strings.CutPrefix(name, "Boot")
	if !ok || len(hex) != 4 || strings.ToUpper(hex) != hex {
		return 0, false
	}
	n, err := strconv.ParseUint(hex, 16, 16)
	return uint16(n), err == nil
}

// BootEntry is a numbered load option.
type BootEntry struct {
	Num    uint16
	Option LoadOption
}

// ReadBootEntry reads Boot####.
func ReadBootEntry(s Store, n uint16) (*LoadOption, error) {
	_, b, err := s.Get(BootName(n), GlobalVariable)
	if err != nil {
		return nil, err
	}
	var o LoadOption
	if err := o.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("read %s: %w", BootName(n), err)
	}
	return &o, nil
}

// WriteBootEntry writes Boot####.
func WriteBootEntry(s Store, n uint16, o *LoadOption) error {
	b, err := o.MarshalBinary()
	if err != nil {
		return err
	}
	return s.Set(BootName(n), GlobalVariable, BootAttributes, b)
}

// BootEntries reads every Boot#### variable, in number order.
func BootEntries(s Store) ([]BootEntry, error) {
	ids, err := s.List()
	if err != nil {
		return nil, err
	}
	var out []BootEntry
	for _, id := range ids {
		n, ok := ParseBootName(id.Name)
		if !ok || id.GUID != GlobalVariable {
			continue
		}
		o, err := ReadBootEntry(s, n)
		if err != nil {
			return nil, err
		}
		out = append(out, BootEntry{Num: n, Option: *o})
	}
	slices.SortFunc(out, func(a, b BootEntry) int { return int(a.Num) - int(b.Num) })
	return out, nil
}

// AddBootEntry writes o under the lowest free number and puts it first in
// BootOrder.
func AddBootEntry(s Store, o *LoadOption) (uint16, error) {
	entries, err := BootEntries(s)
	if err != nil {
		return 0, fmt.Errorf("add boot entry: %w", err)
	}
	n := uint16(0)
	for _, e := range entries {
		if e.Num != n {
			break
		}
		n++
	}
	if len(entries) == 0x10000 {
		return 0, fmt.Errorf("add boot entry: all 65536 numbers in use")
	}
	if err := WriteBootEntry(s, n, o); err != nil {
		return 0, fmt.Errorf("add boot entry: %w", err)
	}
	order, err := BootOrder(s)
	if err != nil {
		return 0, fmt.Errorf("add boot entry: %w", err)
	}
	return n, SetBootOrder(s, append([]uint16{n}, slices.DeleteFunc(order, func(x uint16) bool { return x == n })...))
}

// RemoveBootEntry deletes Boot#### and drops it from BootOrder (and
// BootNext when it points there).
func RemoveBootEntry(s Store, n uint16) error {
	if err := s.Delete(BootName(n), GlobalVariable); err != nil {
		return fmt.Errorf("remove boot entry: %w", err)
	}
	order, err := BootOrder(s)
	if err != nil {
		return fmt.Errorf("remove boot entry: %w", err)
	}
	if i := slices.Index(order, n); i >= 0 {
		if err := SetBootOrder(s, slices.Delete(order, i, i+1)); err != nil {
			return err
		}
	}
	if next, ok, err := BootNext(s); err == nil && ok && next == n {
		return s.Delete("BootNext", GlobalVariable)
	}
	return nil
}

// BootOrder reads BootOrder (empty when absent).
func BootOrder(s Store) ([]uint16, error) {
	_, b, err := s.Get("BootOrder", GlobalVariable)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(b)%2 != 0 {
		return nil, fmt.Errorf("read BootOrder: odd length %d", len(b))
	}
	order := make([]uint16, len(b)/2)
	for i := range order {
		order[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return order, nil
}

// SetBootOrder writes BootOrder.
func SetBootOrder(s Store, order []uint16) error {
	var b []byte
	for _, n := range order {
		b = binary.LittleEndian.AppendUint16(b, n)
	}
	return s.Set("BootOrder", GlobalVariable, BootAttributes, b)
}

// BootNext reads BootNext; ok is false when it is not set.
func BootNext(s Store) (n uint16, ok bool, err error) { return readU16(s, "BootNext") }

// BootCurrent reads BootCurrent, the entry the firmware booted.
func BootCurrent(s Store) (n uint16, ok bool, err error) { return readU16(s, "BootCurrent") }

// SetBootNext makes the firmware boot entry n once on the next boot.
func SetBootNext(s Store, n uint16) error {
	return s.Set("BootNext", GlobalVariable, BootAttributes, binary.LittleEndian.AppendUint16(nil, n))
}

func readU16(s Store, name string) (uint16, bool, error) {
	_, b, err := s.Get(name, GlobalVariable)
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(b) != 2 {
		return 0, false, fmt.Errorf("read %s: %d bytes, want 2", name, len(b))
	}
	return binary.LittleEndian.Uint16(b), true, nil
}
