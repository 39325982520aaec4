// Package report is what the test root's init (internal/bootdisk/rootinit)
// reports from a booted InitOS root, and how the host finds it on the
// console.
package report

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marker starts the report line on the console.
const Marker = "INITOS-ROOT-REPORT "

// ConfigPath is the test root's own config, put into the image by the test.
const ConfigPath = "/etc/initos-test.json"

// Config tells the root init what to try.
type Config struct {
	Name   string   `json:"name"`   // which root this is ("genuine", "attacker")
	LUKS   []string `json:"luks"`   // LUKS partitions to try a second unseal on
	PCRSig string   `json:"pcrsig"` // the UKI's .pcrsig, as an attacker would use it
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Root    string `json:"root"`    // path inside the filesystem (btrfs: the subvolume)
	Point   string `json:"point"`   // mount point
	FSType  string `json:"fstype"`  // filesystem type
	Source  string `json:"source"`  // device
	Options string `json:"options"` // superblock options
}

// Report is what the root's init saw.
type Report struct {
	Name         string           `json:"name"`
	Release      string           `json:"release"`
	Uptime       float64          `json:"uptime"` // seconds since the kernel started, when init ran
	Mounts       map[string]Mount `json:"mounts"` // by mount point
	ModulesDep   bool             `json:"modules_dep"`
	Firmware     bool             `json:"firmware"`
	BtrfsDevices int              `json:"btrfs_devices"`
	// BtrfsProfiles are the block group profiles of the root btrfs by
	// kind (data, metadata, system): {"data": ["raid1"], ...}.
	BtrfsProfiles map[string][]string `json:"btrfs_profiles"`
	PCRs          map[int]string      `json:"pcrs"`
	Unseal        []string            `json:"unseal"` // per LUKS device: "refused: <error>" or "UNSEALED"
	Kmsg          []string            `json:"kmsg"`   // the initrd's lines of the kernel log
	Errors        []string            `json:"errors"`
}

// Find returns the report on a console, or an error when there is none.
func Find(console []byte) (*Report, error) {
	i := bytes.LastIndex(console, []byte(Marker))
	if i < 0 {
		return nil, fmt.Errorf("no %q line on the console: the root's init did not run", Marker)
	}
	line := console[i+len(Marker):]
	if j := bytes.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	var r Report
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("parse the root's report: %w", err)
	}
	return &r, nil
}

// EnrollMarker starts the enrollment boot's result line on the console:
// "OK" or "ERROR <why>".
const EnrollMarker = "INITOS-ENROLL-REPORT "

// EnrollPlanPath is where a test machine's first boot finds its plan.
const EnrollPlanPath = "/etc/initos-enroll.json"

// EnrollPlan is what the first boot of a test machine enrolls (bootdisk's enrollinit,
// as the installer would): for each volume a
// TPM token with the default policy and, unless it plays the attacker's,
// the binding.
type EnrollPlan struct {
	Volumes []EnrollVolume `json:"volumes"`
}

// EnrollVolume is one volume of an EnrollPlan.
type EnrollVolume struct {
	Device string `json:"device"` // e.g. /dev/vda3
	Pass   string `json:"pass"`   // its keyslot 0 passphrase
	Bind   bool   `json:"bind"`   // an InitOS binding (not for an attacker's volume)
}
