package install

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Summary is what an install did: printed at the end, and as JSON.
type Summary struct {
	InstallID string `json:"install_id"`
	// AlreadyComplete: the disks held this install, complete, before the
	// run; only the boot entries were checked.
	AlreadyComplete bool          `json:"already_complete"`
	Disks           []SummaryDisk `json:"disks"`
	UKI             string        `json:"uki,omitempty"`
	UKISigner       string        `json:"uki_signer,omitempty"`
	Modules         string        `json:"modules,omitempty"`
	ModulesRootHash string        `json:"modules_root_hash,omitempty"`
	Filesystem      string        `json:"filesystem,omitempty"` // "btrfs", "btrfs raid1"
	Image           string        `json:"image,omitempty"`      // digest
	Root            string        `json:"root,omitempty"`       // root subvolume path
	SecureBoot      string        `json:"secure_boot,omitempty"`
	TPM             string        `json:"tpm,omitempty"`
	BootEntries     []BootEntry   `json:"boot_entries,omitempty"`
	// RecoveryKey is set when it was shown (not Config.RecoveryKey.Hide).
	RecoveryKey     string       `json:"recovery_key,omitempty"`
	RecoveryKeyFile string       `json:"recovery_key_file,omitempty"`
	Steps           []StepResult `json:"steps"`
	Elapsed         string       `json:"elapsed,omitempty"`
}

// SummaryDisk is one installed disk.
type SummaryDisk struct {
	ID       string `json:"id"`
	Path     string `json:"path"`
	Size     Size   `json:"size"`
	Model    string `json:"model,omitempty"`
	Action   string `json:"action"`
	DiskGUID string `json:"disk_guid"`
	ESPs     []Part `json:"esps"`
	LUKS     Part   `json:"luks"`
	LUKSUUID string `json:"luks_uuid,omitempty"`
}

// Part names one partition in a summary.
type Part struct {
	Number int    `json:"number"`
	Name   string `json:"name"`
	GUID   string `json:"guid"`
	Size   Size   `json:"size"`
}

// StepResult is how one step went.
type StepResult struct {
	Name     string  `json:"name"`
	Status   string  `json:"status"`
	Duration float64 `json:"seconds"`
}

func (s *Summary) addStep(name, status string, d time.Duration) {
	if status == "" {
		status = "failed"
	}
	s.Steps = append(s.Steps, StepResult{Name: name, Status: status, Duration: d.Round(time.Millisecond).Seconds()})
}

// setDisks records the planned disks.
func (s *Summary) setDisks(p *Plan) {
	s.InstallID, s.AlreadyComplete = p.InstallID, p.Complete
	s.Disks = nil
	for _, d := range p.Disks {
		sd := SummaryDisk{ID: d.ID, Path: d.Path, Size: d.Size, Model: d.Model, Action: d.Action, DiskGUID: d.Layout.DiskGUID}
		for _, p := range d.Layout.Partitions {
			part := Part{Number: p.Number, Name: p.Name, GUID: p.GUID, Size: Size(p.Sectors) * Size(d.Layout.SectorSize)}
			if p.Number == PartLUKS {
				sd.LUKS = part
			} else {
				sd.ESPs = append(sd.ESPs, part)
			}
		}
		s.Disks = append(s.Disks, sd)
	}
}

// Write prints the summary for a human.
func (s *Summary) Write(w io.Writer) {
	state := "installed"
	if s.AlreadyComplete {
		state = "was already installed"
	}
	fmt.Fprintf(w, "InitOS install %s %s:\n", s.InstallID, state)
	for _, d := range s.Disks {
		var esps []string
		for _, e := range d.ESPs {
			esps = append(esps, fmt.Sprintf("%d %s", e.Number, e.GUID))
		}
		fmt.Fprintf(w, "  %s (%s, %s): ESP %s; LUKS2 %s on partition %d\n", d.ID, d.Path, d.Size.Human(), strings.Join(esps, ", "), d.LUKSUUID, d.LUKS.Number)
	}
	for _, kv := range [][2]string{
		{"UKI", s.UKI + " signed by " + s.UKISigner}, {"modules", s.Modules + " root hash " + s.ModulesRootHash},
		{"filesystem", s.Filesystem}, {"root", s.Root + " from " + s.Image}, {"Secure Boot", s.SecureBoot},
		{"TPM", s.TPM}, {"recovery key file", s.RecoveryKeyFile},
	} {
		if v := strings.TrimSpace(kv[1]); v != "" && !strings.HasPrefix(v, "signed by") && !strings.HasPrefix(v, "from") {
			fmt.Fprintf(w, "  %s: %s\n", kv[0], v)
		}
	}
	for _, e := range s.BootEntries {
		fmt.Fprintf(w, "  %s %q -> %s partition %d (%s)\n", e.Name, e.Label, e.Disk, e.Partition, e.PartGUID)
	}
	var steps []string
	for _, st := range s.Steps {
		steps = append(steps, fmt.Sprintf("%s %.1fs (%s)", st.Name, st.Duration, st.Status))
	}
	fmt.Fprintf(w, "  steps: %s\n", strings.Join(steps, ", "))
}
