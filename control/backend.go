package control

import (
	"context"
	"errors"
	"io"
)

// Backend is what the initrd (initos-init) implements for the control
// plane: the server parses and authorizes each request, then calls exactly
// one Backend method. Methods may be called concurrently from different
// sessions, except Unlock, which the server serializes.
type Backend interface {
	// Status reports the boot stage and, when the boot stopped, why.
	Status(ctx context.Context) (Status, error)
	// Unlock tries key (a passphrase or recovery key, without trailing
	// newline) on the locked volumes. It returns an error wrapping
	// ErrWrongKey when no volume accepts the key, so that the server counts
	// and rate-limits it. On success the volumes are open and the boot goes
	// on to switch_root once the server has answered. The server wipes key
	// after the call.
	Unlock(ctx context.Context, key []byte) error
	// PCRs reports the live PCR values beside the values the unlock policy
	// expects, and the TPM event log.
	PCRs(ctx context.Context) (PCRReport, error)
	// Reseal re-enrolls the TPM token of every open volume against the
	// current PCR 7 (after a recovery-key unlock, before leave-initrd), so
	// the next boot auto-unlocks. It returns what it did, one line a volume.
	Reseal(ctx context.Context) ([]string, error)
	// Logs writes the kernel log ring (/dev/kmsg) to w and, when follow is
	// set, keeps writing new records until ctx ends. ReadKmsg implements it.
	Logs(ctx context.Context, w io.Writer, follow bool) error
	// Reboot and PowerOff end the boot; they return only on failure.
	Reboot(ctx context.Context) error
	PowerOff(ctx context.Context) error
	// BootNext sets a one-shot BootNext to the firmware entry of slot "A"
	// or "B" (the server validates the name).
	BootNext(ctx context.Context, slot string) error
	// Install runs the unattended install from config (the bytes sent on
	// stdin), writing progress to w. Called only in install mode.
	Install(ctx context.Context, config []byte, w io.Writer) error
}

// ErrWrongKey is wrapped by Backend.Unlock when the key opens no volume.
var ErrWrongKey = errors.New("wrong key")

// Status is the state the initrd reports with the status verb.
type Status struct {
	Stage     string   `json:"stage"`              // current step, e.g. "unlock", "wait-control"
	Mode      string   `json:"mode"`               // "boot" or "install"
	Slot      string   `json:"slot,omitempty"`     // A/B slot booted from
	Version   uint64   `json:"version,omitempty"`  // security version of the UKI
	BuildID   string   `json:"build_id,omitempty"` // build id of the UKI
	Kernel    string   `json:"kernel,omitempty"`   // uname -r
	Failure   *Failure `json:"failure,omitempty"`  // nil while nothing failed
	Disks     []Disk   `json:"disks,omitempty"`
	Volumes   []Volume `json:"volumes,omitempty"`
	UptimeSec float64  `json:"uptime_sec,omitempty"`
	// Filled by the server: wrong unlock keys since the server started.
	WrongKeys int `json:"wrong_keys"`
}

// Failure is the step that stopped the boot and why.
type Failure struct {
	Step    string        `json:"step"`    // e.g. "unlock"
	Message string        `json:"message"` // one line, e.g. "volume 3f2a...: PCR 7 mismatch"
	PCRs    []PCRMismatch `json:"pcrs,omitempty"`
}

// PCRMismatch is one PCR whose live value differs from the policy's.
type PCRMismatch struct {
	Bank     string `json:"bank"` // "sha256"
	Index    int    `json:"index"`
	Expected string `json:"expected"` // hex
	Actual   string `json:"actual"`   // hex
}

// Disk is a block device the initrd saw.
type Disk struct {
	Name   string `json:"name"` // kernel name, e.g. "vda"
	Size   uint64 `json:"size"` // bytes
	Model  string `json:"model,omitempty"`
	Serial string `json:"serial,omitempty"`
}

// Volume is a LUKS2 volume the initrd found.
type Volume struct {
	Device string `json:"device"`           // e.g. /dev/vda3
	UUID   string `json:"uuid"`             // LUKS UUID
	State  string `json:"state"`            // "locked", "open"
	Token  string `json:"token,omitempty"`  // "systemd-tpm2", or "" without a TPM token
	Reason string `json:"reason,omitempty"` // why it is still locked
}

// PCRReport is the answer to the pcrs verb.
type PCRReport struct {
	Bank     string  `json:"bank"`
	PCRs     []PCR   `json:"pcrs"`
	EventLog []Event `json:"event_log,omitempty"`
}

// PCR is one live PCR value beside the value the policy expects ("" when
// the policy does not bind it).
type PCR struct {
	Index    int    `json:"index"`
	Value    string `json:"value"`              // hex
	Expected string `json:"expected,omitempty"` // hex
}

// Event is one entry of the TPM event log.
type Event struct {
	PCR    int    `json:"pcr"`
	Type   string `json:"type"`   // e.g. "EV_EFI_VARIABLE_DRIVER_CONFIG"
	Digest string `json:"digest"` // hex, of the report's bank
	Data   string `json:"data,omitempty"`
}
