package update

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"

	"initos/efivar"
)

// loaderVendor is the vendor GUID of the Boot Loader Interface variables
// systemd-stub sets (LoaderDevicePartUUID: the partition it was loaded from).
var loaderVendor = efivar.MustParseGUID("4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")

// ActiveSlot returns the slot this boot came from, and how it was found:
// systemd-stub's LoaderDevicePartUUID names the ESP the UKI was loaded
// from; without it, the firmware's BootCurrent entry and its partition.
func (s *System) ActiveSlot() (slot, how string, err error) {
	u, err := loaderDevicePartUUID(s.Vars)
	if err != nil {
		return "", "", err
	}
	if u != "" {
		if e, ok := s.espByPartUUID(u); ok {
			return e.Slot, "LoaderDevicePartUUID " + u, nil
		}
		return "", "", fmt.Errorf("active slot: the UKI was loaded from partition %s (LoaderDevicePartUUID), which is no InitOS ESP", u)
	}
	n, ok, err := efivar.BootCurrent(s.Vars)
	if err != nil || !ok {
		return "", "", fmt.Errorf("active slot: no LoaderDevicePartUUID and no BootCurrent (%v): cannot tell which slot booted", err)
	}
	if slot := s.entrySlot(n); slot != "" {
		return slot, "BootCurrent " + efivar.BootName(n), nil
	}
	return "", "", fmt.Errorf("active slot: BootCurrent %s does not start an InitOS ESP", efivar.BootName(n))
}

// loaderDevicePartUUID reads LoaderDevicePartUUID: a UTF-16LE GUID
// string; "" when absent.
func loaderDevicePartUUID(vars efivar.Store) (string, error) {
	_, b, err := vars.Get("LoaderDevicePartUUID", loaderVendor)
	if errors.Is(err, efivar.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if len(b)%2 != 0 || len(b) > 2*64 {
		return "", fmt.Errorf("LoaderDevicePartUUID: %d bytes", len(b))
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if c := binary.LittleEndian.Uint16(b[i:]); c != 0 {
			u = append(u, c)
		} else {
			break
		}
	}
	g, err := efivar.ParseGUID(strings.ToLower(string(utf16.Decode(u))))
	if err != nil {
		return "", fmt.Errorf("LoaderDevicePartUUID: %w", err)
	}
	return g.String(), nil
}

// entrySlot returns the slot whose ESP boot entry n starts, "" if none.
func (s *System) entrySlot(n uint16) string {
	o, err := efivar.ReadBootEntry(s.Vars, n)
	if err != nil {
		return ""
	}
	return s.optionSlot(o)
}

// optionSlot returns the slot of the ESP a load option's Hard Drive node
// names, "" if it names none of ours.
func (s *System) optionSlot(o *efivar.LoadOption) string {
	for _, node := range o.FilePath {
		if hd, ok := node.HardDrive(); ok && hd.SignatureType == efivar.SignatureTypeGUID {
			if e, ok := s.espByPartUUID(hd.PartitionSignature.String()); ok {
				return e.Slot
			}
		}
	}
	return ""
}

// Entries are the firmware boot entries of the two slots.
type Entries struct {
	A, B  *efivar.BootEntry // nil when the slot has none
	Order []uint16          // BootOrder
	Next  *uint16           // BootNext, nil when not set
}

// Of returns the entry of slot.
func (e *Entries) Of(slot string) *efivar.BootEntry {
	if slot == SlotA {
		return e.A
	}
	return e.B
}

// DefaultSlot is the slot of the first InitOS entry in BootOrder: what a
// reset boots ("" when BootOrder names none).
func (e *Entries) DefaultSlot() string {
	for _, n := range e.Order {
		for _, slot := range []string{SlotA, SlotB} {
			if b := e.Of(slot); b != nil && b.Num == n {
				return slot
			}
		}
	}
	return ""
}

// NextSlot is the slot BootNext starts ("" when not set or not ours).
func (e *Entries) NextSlot() string {
	if e.Next == nil {
		return ""
	}
	for _, slot := range []string{SlotA, SlotB} {
		if b := e.Of(slot); b != nil && b.Num == *e.Next {
			return slot
		}
	}
	return ""
}

// ReadEntries finds each slot's boot entry: an active entry whose Hard
// Drive node is one of the slot's ESPs, preferring the one labelled
// "InitOS A"/"InitOS B", then the one earliest in BootOrder.
func (s *System) ReadEntries() (*Entries, error) {
	all, err := efivar.BootEntries(s.Vars)
	if err != nil {
		return nil, fmt.Errorf("read the boot entries: %w", err)
	}
	e := &Entries{}
	if e.Order, err = efivar.BootOrder(s.Vars); err != nil {
		return nil, fmt.Errorf("read BootOrder: %w", err)
	}
	if n, ok, err := efivar.BootNext(s.Vars); err != nil {
		return nil, fmt.Errorf("read BootNext: %w", err)
	} else if ok {
		e.Next = &n
	}
	// Lower is better: labelled "InitOS X" first, then by BootOrder.
	rank := func(b efivar.BootEntry) int {
		r := 1 << 17
		if i := slices.Index(e.Order, b.Num); i >= 0 {
			r = i
		}
		if b.Option.Description != Label(s.optionSlot(&b.Option)) {
			r += 1 << 18
		}
		return r
	}
	for _, b := range all {
		slot := s.optionSlot(&b.Option)
		if slot == "" || b.Option.Attributes&efivar.LoadOptionActive == 0 {
			continue
		}
		cur := e.Of(slot)
		if cur == nil || rank(b) < rank(*cur) {
			b := b
			if slot == SlotA {
				e.A = &b
			} else {
				e.B = &b
			}
		}
	}
	return e, nil
}

// EnsureEntry returns slot's boot entry, creating one for the slot's
// first ESP when there is none (without putting it in BootOrder).
func (s *System) EnsureEntry(slot string) (uint16, error) {
	e, err := s.ReadEntries()
	if err != nil {
		return 0, err
	}
	if b := e.Of(slot); b != nil {
		return b.Num, nil
	}
	esps := s.SlotESPs(slot)
	if len(esps) == 0 {
		return 0, fmt.Errorf("slot %s has no ESP", slot)
	}
	return s.addEntry(esps[0])
}

// EnsureEntries does what the installer does for the firmware: boot
// entries "InitOS A" and "InitOS B" (created when missing), A then B at
// the head of BootOrder, the other entries after them in their order.
func (s *System) EnsureEntries() error {
	a, err := s.EnsureEntry(SlotA)
	if err != nil {
		return err
	}
	b, err := s.EnsureEntry(SlotB)
	if err != nil {
		return err
	}
	order, err := efivar.BootOrder(s.Vars)
	if err != nil {
		return fmt.Errorf("read BootOrder: %w", err)
	}
	order = slices.DeleteFunc(order, func(n uint16) bool { return n == a || n == b })
	if err := efivar.SetBootOrder(s.Vars, append([]uint16{a, b}, order...)); err != nil {
		return fmt.Errorf("set BootOrder: %w", err)
	}
	return nil
}

// addEntry writes a boot entry "InitOS X" starting the UKI on esp, under
// the lowest free number.
func (s *System) addEntry(esp ESP) (uint16, error) {
	g, err := efivar.ParseGUID(esp.PartUUID)
	if err != nil {
		return 0, fmt.Errorf("ESP %s: %w", esp.Device, err)
	}
	o := &efivar.LoadOption{Attributes: efivar.LoadOptionActive, Description: Label(esp.Slot),
		FilePath: efivar.DevicePath{efivar.HardDriveNode(efivar.HardDrive{PartitionNumber: uint32(esp.Number),
			PartitionStart: esp.Start, PartitionSize: esp.Size, PartitionSignature: g,
			PartitionFormat: efivar.PartitionFormatGPT, SignatureType: efivar.SignatureTypeGUID}),
			efivar.FilePathNode(LoaderESP)}}
	all, err := efivar.BootEntries(s.Vars)
	if err != nil {
		return 0, err
	}
	n := uint16(0)
	for _, b := range all {
		if b.Num != n {
			break
		}
		n++
	}
	if err := efivar.WriteBootEntry(s.Vars, n, o); err != nil {
		return 0, fmt.Errorf("add the boot entry %q: %w", o.Description, err)
	}
	s.logf("boot entry %s %q created for %s", efivar.BootName(n), o.Description, esp.Device)
	return n, nil
}

// setDefault puts slot's entry first in BootOrder, keeping the others in
// their order, and writes nothing when it already is.
func (s *System) setDefault(slot string) error {
	n, err := s.EnsureEntry(slot)
	if err != nil {
		return err
	}
	order, err := efivar.BootOrder(s.Vars)
	if err != nil {
		return fmt.Errorf("read BootOrder: %w", err)
	}
	want := append([]uint16{n}, slices.DeleteFunc(slices.Clone(order), func(x uint16) bool { return x == n })...)
	if slices.Equal(order, want) {
		return nil
	}
	if err := efivar.SetBootOrder(s.Vars, want); err != nil {
		return fmt.Errorf("set BootOrder: %w", err)
	}
	return nil
}
