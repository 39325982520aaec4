package trial

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"initos/efivar"
)

// VarName is the EFI variable holding the trial record, under VendorGUID.
const VarName = "InitOSTrial"

// VendorGUID is InitOS's EFI vendor GUID (the contract between parts).
var VendorGUID = efivar.MustParseGUID("d1576472-6c95-4951-98c8-a4e37026ab55")

// Attributes of the variable: non-volatile, boot and runtime access.
const Attributes = efivar.NonVolatile | efivar.BootserviceAccess | efivar.RuntimeAccess

// MaxSize bounds the record (the variable store is small flash).
const MaxSize = 2048

// maxReason bounds Reason so that a record always fits in MaxSize.
const maxReason = 1024

// State is where a trial stands.
type State string

// States of a trial, in the order they happen.
const (
	Staged  State = "staged"  // written and BootNext set; not booted yet
	Trying  State = "trying"  // its initrd started the trial
	Blessed State = "blessed" // the health gate passed; it is the default slot
	Failed  State = "failed"  // it ended without a bless
)

// Ended reports whether the trial is over.
func (s State) Ended() bool { return s == Blessed || s == Failed }

// Record describes the last upgrade of a slot and how it went. Times are
// Unix seconds (the firmware's RTC through the kernel: good enough to
// order events, not to trust).
type Record struct {
	Format          int    `json:"format"` // 1
	Slot            string `json:"slot"`   // "a" or "b": the slot on trial
	From            string `json:"from"`   // the slot that staged it
	State           State  `json:"state"`
	SecurityVersion uint64 `json:"security_version"`
	BuildID         string `json:"build_id,omitempty"`
	Kernel          string `json:"kernel,omitempty"`
	StagedAt        int64  `json:"staged_at,omitempty"`
	BootedAt        int64  `json:"booted_at,omitempty"` // when its initrd started the trial
	EndedAt         int64  `json:"ended_at,omitempty"`  // when it was blessed or found failed
	// Step names where a failed trial stopped: "firmware or kernel"
	// (its initrd never ran), "initrd: <step>", "after the initrd",
	// "health gate".
	Step   string `json:"step,omitempty"`
	Reason string `json:"reason,omitempty"` // why, in words
}

// Format is the record format this package writes.
const Format = 1

// Other returns the other slot of an A/B pair ("a" <-> "b").
func Other(slot string) string {
	switch slot {
	case "a":
		return "b"
	case "b":
		return "a"
	}
	return ""
}

// Parse decodes and checks a record.
func Parse(b []byte) (*Record, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("trial record: %d bytes, at most %d", len(b), MaxSize)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("trial record: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the fields of r.
func (r *Record) Validate() error {
	switch {
	case r.Format != Format:
		return fmt.Errorf("trial record: format %d, want %d", r.Format, Format)
	case Other(r.Slot) == "":
		return fmt.Errorf("trial record: slot %q, want a or b", r.Slot)
	case r.From != "" && r.From != Other(r.Slot):
		return fmt.Errorf("trial record: from slot %q, want %q", r.From, Other(r.Slot))
	}
	switch r.State {
	case Staged, Trying, Blessed, Failed:
	default:
		return fmt.Errorf("trial record: state %q, want staged, trying, blessed or failed", r.State)
	}
	for _, s := range []string{r.BuildID, r.Kernel, r.Step} {
		if len(s) > 256 || !utf8.ValidString(s) {
			return fmt.Errorf("trial record: field of %d bytes (at most 256, UTF-8)", len(s))
		}
	}
	if len(r.Reason) > maxReason || !utf8.ValidString(r.Reason) {
		return fmt.Errorf("trial record: reason of %d bytes (at most %d, UTF-8)", len(r.Reason), maxReason)
	}
	return nil
}

// Marshal validates r and encodes it.
func (r *Record) Marshal() ([]byte, error) {
	r.Format = Format
	r.Reason = truncate(r.Reason, maxReason)
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// Read reads the trial record; (nil, nil) when there is none.
func Read(s efivar.Store) (*Record, error) {
	_, b, err := s.Get(VarName, VendorGUID)
	if errors.Is(err, efivar.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the trial record: %w", err)
	}
	return Parse(b)
}

// Write writes the trial record.
func Write(s efivar.Store, r *Record) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if err := s.Set(VarName, VendorGUID, Attributes, b); err != nil {
		return fmt.Errorf("write the trial record: %w", err)
	}
	return nil
}

// Unix is t in Unix seconds, 0 for the zero time.
func Unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
