package update

import (
	"fmt"
	"io"
	"strings"
	"time"

	gotpm "github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"initos/efivar"
	"initos/update/trial"
)

// Slots of the A/B pair, as initos.conf and the trial record name them.
const (
	SlotA = "a"
	SlotB = "b"
)

// ESP partition names of the slots (the installer's GPT names) and the
// firmware boot entry labels.
const (
	NameESPA  = "InitOS ESP A"
	NameESPB  = "InitOS ESP B"
	LabelA    = "InitOS A"
	LabelB    = "InitOS B"
	LoaderESP = `\EFI\Linux\initos.efi` // what the boot entries start
)

// Files of a slot's ESP (ESP-relative, '/'-separated).
const (
	UKIPath      = "EFI/Linux/initos.efi"
	FallbackPath = "EFI/BOOT/BOOTX64.EFI" // the removable-media path (BOOTAA64.EFI on arm64)
	ModulesDir   = "initos"
)

// SlotOfName returns the slot of an ESP from its GPT name, "" if none.
func SlotOfName(name string) string {
	switch name {
	case NameESPA:
		return SlotA
	case NameESPB:
		return SlotB
	}
	return ""
}

// Label returns the boot entry label of slot ("InitOS A").
func Label(slot string) string { return "InitOS " + strings.ToUpper(slot) }

// Other returns the other slot.
func Other(slot string) string { return trial.Other(slot) }

// ESP is the EFI System Partition of one slot on one disk.
type ESP struct {
	Slot     string // "a" or "b"
	Disk     string // the whole disk, e.g. /dev/vda
	Device   string // the partition, e.g. /dev/vda1
	Number   int    // partition number (1-based)
	PartUUID string // the GPT unique partition GUID, lower case
	Start    uint64 // first LBA
	Size     uint64 // in logical blocks
}

// Mounter makes an ESP's files reachable: Mount returns the directory its
// filesystem is mounted on (read-only unless writable) and a function that
// releases it (syncing and unmounting what Mount mounted).
type Mounter interface {
	Mount(esp ESP, writable bool) (dir string, release func() error, err error)
}

// DirMounter is a Mounter for tests: each ESP is a plain directory,
// looked up by PARTUUID.
type DirMounter map[string]string

// Mount implements Mounter.
func (m DirMounter) Mount(esp ESP, writable bool) (string, func() error, error) {
	dir, ok := m[esp.PartUUID]
	if !ok {
		return "", nil, fmt.Errorf("ESP %s (slot %s): no directory", esp.PartUUID, esp.Slot)
	}
	return dir, func() error { return nil }, nil
}

// System is the machine the update flows act on: its UEFI variables, its
// ESPs, a way to mount them, its TPM. Discover fills it in on a booted
// host; tests build it from directories.
type System struct {
	Vars    efivar.Store
	ESPs    []ESP // every ESP of both slots, on every disk
	Mounter Mounter
	// OpenTPM opens the TPM for the anti-rollback index; nil means no TPM
	// (the version check is then skipped and reported as such).
	OpenTPM func() (transport.TPMCloser, error)
	// RollbackIndex is the anti-rollback NV index; 0: tpm2.RollbackIndex.
	RollbackIndex gotpm.TPMHandle
	// OwnerAuth is the TPM owner hierarchy's password (nil: empty).
	OwnerAuth []byte
	// Log receives progress lines ("stage: ..."); nil discards them.
	Log io.Writer
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

func (s *System) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format+"\n", args...)
	}
}

func (s *System) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SlotESPs returns the ESPs of slot, in disk order.
func (s *System) SlotESPs(slot string) []ESP {
	var out []ESP
	for _, e := range s.ESPs {
		if e.Slot == slot {
			out = append(out, e)
		}
	}
	return out
}

// espByPartUUID finds an ESP by its PARTUUID (any case).
func (s *System) espByPartUUID(u string) (ESP, bool) {
	for _, e := range s.ESPs {
		if strings.EqualFold(e.PartUUID, u) {
			return e, true
		}
	}
	return ESP{}, false
}

// check verifies that the system has both slots.
func (s *System) check() error {
	switch {
	case s.Vars == nil:
		return fmt.Errorf("no UEFI variables (efivarfs): A/B upgrades need the firmware's boot entries")
	case len(s.SlotESPs(SlotA)) == 0 || len(s.SlotESPs(SlotB)) == 0:
		return fmt.Errorf("no A/B pair of ESPs (GPT names %q and %q of type EFI System): this host has no second slot to upgrade into", NameESPA, NameESPB)
	case s.Mounter == nil:
		return fmt.Errorf("no way to mount the ESPs")
	}
	return nil
}
