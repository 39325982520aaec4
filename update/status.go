package update

import (
	"fmt"
	"os"

	"initos/efivar"
	"initos/update/trial"
)

// Status is the A/B state of a host: which slot booted, which one the
// firmware boots by default and next, what each slot holds, the TPM's
// anti-rollback minimum, and the last trial with its outcome.
type Status struct {
	Active    string `json:"active"`     // the slot this boot came from
	ActiveHow string `json:"active_how"` // how that was found
	Default   string `json:"default"`    // BootOrder's first InitOS slot: what a reset boots
	Next      string `json:"next,omitempty"`
	OnTrial   bool   `json:"on_trial"` // this boot is an unblessed trial
	BootID    string `json:"boot_id,omitempty"`
	// MinVersion is the TPM's anti-rollback minimum (RollbackChecked:
	// whether a TPM was there to ask).
	MinVersion      uint64       `json:"min_version"`
	RollbackChecked bool         `json:"rollback_checked"`
	Slots           []SlotStatus `json:"slots"`
	// Trial is the last trial; Outcome says how it ended: "blessed",
	// "failed", "trying" (this boot), "staged" (awaiting its boot), or
	// "failed (unrecorded)" when the slot that booted shows a trial of
	// the other slot that its initrd has not yet recorded as failed.
	Trial   *trial.Record `json:"trial,omitempty"`
	Outcome string        `json:"outcome,omitempty"`
}

// SlotStatus is what one slot holds.
type SlotStatus struct {
	Slot    string   `json:"slot"`
	Entry   string   `json:"entry,omitempty"` // its firmware boot entry, e.g. Boot0001
	ESPs    []string `json:"esps"`
	UKI     *UKI     `json:"uki,omitempty"`
	Modules string   `json:"modules,omitempty"` // "verified", "present", "none", or what is wrong
	// Bootable: a UKI the db accepts, its modules image there, and a
	// security version not below the TPM minimum.
	Bootable bool   `json:"bootable"`
	Problem  string `json:"problem,omitempty"`
}

// StatusOptions tune ReadStatus.
type StatusOptions struct {
	VerifyModules bool // hash each slot's modules image against its root hash (slower)
}

// ReadStatus reads the A/B state; it writes nothing.
func ReadStatus(sys *System, o StatusOptions) (*Status, error) {
	if err := sys.check(); err != nil {
		return nil, err
	}
	st := &Status{}
	var err error
	if st.Active, st.ActiveHow, err = sys.ActiveSlot(); err != nil {
		return nil, err
	}
	e, err := sys.ReadEntries()
	if err != nil {
		return nil, err
	}
	st.Default, st.Next = e.DefaultSlot(), e.NextSlot()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		st.BootID = string(trimNL(b))
	}
	m, checked, err := sys.minVersion()
	if err != nil {
		return nil, err
	}
	st.MinVersion, st.RollbackChecked = m.Min, checked
	db, dbErr := sys.dbCerts()
	for _, slot := range []string{SlotA, SlotB} {
		st.Slots = append(st.Slots, sys.slotStatus(slot, e, db, dbErr, st, o))
	}
	if st.Trial, err = trial.Read(sys.Vars); err != nil {
		return nil, err
	}
	st.Outcome, st.OnTrial = outcome(st.Trial, st.Active), false
	if st.Trial != nil && st.Trial.Slot == st.Active && !st.Trial.State.Ended() {
		st.OnTrial = true
	}
	if st.Default != "" && st.Default != st.Active {
		st.OnTrial = true
	}
	return st, nil
}

// outcome names how the last trial ended, as the booted slot sees it.
func outcome(r *trial.Record, active string) string {
	switch {
	case r == nil:
		return ""
	case r.State.Ended():
		return string(r.State)
	case r.Slot == active:
		return string(trial.Trying)
	case r.State == trial.Staged && r.BootedAt == 0:
		return string(trial.Staged)
	}
	return "failed (unrecorded)"
}

// slotStatus inspects one slot's first ESP (read-only).
func (s *System) slotStatus(slot string, e *Entries, db dbCerts, dbErr error, st *Status, o StatusOptions) SlotStatus {
	ss := SlotStatus{Slot: slot}
	if b := e.Of(slot); b != nil {
		ss.Entry = efivar.BootName(b.Num)
	}
	esps := s.SlotESPs(slot)
	for _, esp := range esps {
		ss.ESPs = append(ss.ESPs, esp.Device)
	}
	dir, release, err := s.Mounter.Mount(esps[0], false)
	if err != nil {
		ss.Problem = err.Error()
		return ss
	}
	defer release()
	b, err := readBounded(joinESP(dir, UKIPath), MaxUKISize)
	if err != nil {
		ss.Problem = "no UKI: " + err.Error()
		return ss
	}
	if ss.UKI, err = InspectUKI(b, nil); err != nil {
		ss.Problem = err.Error()
		return ss
	}
	ss.Modules = s.modulesState(dir, ss.UKI.Config.ModulesImage, o.VerifyModules)
	ss.Problem = s.slotProblem(b, ss, db, dbErr, st)
	ss.Bootable = ss.Problem == ""
	if u, err := InspectUKI(b, db.certs); err == nil {
		ss.UKI.Signer = u.Signer
	}
	return ss
}

// modulesState checks the slot's modules image.
func (s *System) modulesState(dir string, m ModulesImage, verify bool) string {
	if m.RootHash == "" {
		return "none"
	}
	f, err := os.Open(joinESP(dir, m.File))
	if err != nil {
		return "missing: " + err.Error()
	}
	defer f.Close()
	if !verify {
		return "present"
	}
	if err := VerifyModules(f, m); err != nil {
		return err.Error()
	}
	return "verified"
}

// slotProblem says why a slot would not boot and unlock, "" if nothing.
func (s *System) slotProblem(uki []byte, ss SlotStatus, db dbCerts, dbErr error, st *Status) string {
	switch {
	case dbErr != nil:
		return dbErr.Error()
	case ss.Modules != "none" && ss.Modules != "present" && ss.Modules != "verified":
		return "modules image " + ss.Modules
	case st.RollbackChecked && ss.UKI.Version < st.MinVersion:
		return fmt.Sprintf("security version %d is below the TPM's anti-rollback minimum %d: it can no longer unseal the disk", ss.UKI.Version, st.MinVersion)
	}
	if _, err := InspectUKI(uki, db.certs); err != nil {
		return err.Error()
	}
	return ""
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
