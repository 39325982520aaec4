package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"initos/efivar"
	"initos/update/trial"
)

// StepError is the error of a failed step of a flow ("stage: verify: ...").
type StepError struct {
	Flow, Step string
	Err        error
}

func (e *StepError) Error() string { return e.Flow + ": " + e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// Errors of the upgrade flows that callers branch on.
var (
	// ErrOnTrial: this boot is an unblessed trial; its slot's twin holds
	// the last good UKI and must not be overwritten.
	ErrOnTrial = errors.New("this boot is a trial that was not blessed")
	// ErrRollback: the UKI's security version is below the TPM minimum.
	ErrRollback = trial.ErrRolledBack
)

// RootInstaller installs a root image for a slot: it pulls ref into a new
// root subvolume and points initos.conf's root.<slot>= at it (the other
// slot's mapping untouched), returning the subvolume's path.
type RootInstaller interface {
	InstallRoot(ctx context.Context, ref, slot string) (string, error)
}

// StageOptions tune Stage. The zero value stages the source's artifacts
// and sets BootNext.
type StageOptions struct {
	RootImage  string        // a root image to install for the slot; "" takes the source's
	Roots      RootInstaller // required for a root image
	NoBootNext bool          // stage and verify, but leave BootNext and the trial record alone
	// Progress, when set, is told how far each step got.
	Progress func(step string, done, total int64)
}

// StageResult is what Stage did.
type StageResult struct {
	Slot         string      `json:"slot"` // the slot staged (the inactive one)
	From         string      `json:"from"` // the active slot
	Source       string      `json:"source"`
	UKI          *UKI        `json:"uki"`
	ESPs         []ESPResult `json:"esps"`
	BytesWritten int64       `json:"bytes_written"`
	Root         string      `json:"root,omitempty"` // the new root subvolume, when a root image was given
	BootNext     string      `json:"boot_next,omitempty"`
	// MinVersion is the TPM's anti-rollback minimum; RollbackChecked is
	// false when there was no TPM to ask.
	MinVersion      uint64  `json:"min_version"`
	RollbackChecked bool    `json:"rollback_checked"`
	Seconds         float64 `json:"seconds"`
}

// ESPResult is one ESP of the staged slot.
type ESPResult struct {
	Device   string       `json:"device"`
	PartUUID string       `json:"partuuid"`
	Files    []FileResult `json:"files"`
}

// Stage writes the source's UKI and modules image into the inactive
// slot's ESPs and verifies them by reading them back, then records the
// trial (state staged) and sets BootNext to the slot's boot entry. The
// active slot is never written. See the package documentation for the
// steps and their order.
func Stage(ctx context.Context, sys *System, src Source, o StageOptions) (*StageResult, error) {
	st := &stager{sys: sys, src: src, o: o, res: &StageResult{Source: src.String()}, start: sys.now(), mounts: map[string]string{}}
	defer st.release()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"check", st.check}, {"uki", st.readUKI}, {"rollback", st.checkRollback},
		{"write", st.write}, {"verify", st.verify}, {"root", st.root}, {"bootnext", st.bootNext},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return st.res, &StepError{"stage", s.name, err}
		}
		if err := s.run(ctx); err != nil {
			return st.res, &StepError{"stage", s.name, err}
		}
	}
	st.res.Seconds = sys.now().Sub(st.start).Seconds()
	return st.res, nil
}

type stager struct {
	sys   *System
	src   Source
	o     StageOptions
	res   *StageResult
	start time.Time
	uki   []byte
	u     *UKI
	db    dbCerts
	// mounts are the slot's ESPs mounted writable, by PARTUUID, and
	// their releases (unmounted when Stage returns).
	mounts   map[string]string
	releases []func() error
}

// check finds the slots, refuses a trial boot, and clears a BootNext
// left pointing at the slot about to be rewritten.
func (st *stager) check(ctx context.Context) error {
	s := st.sys
	if err := s.check(); err != nil {
		return err
	}
	active, how, err := s.ActiveSlot()
	if err != nil {
		return err
	}
	st.res.From, st.res.Slot = active, Other(active)
	s.logf("stage: booted from slot %s (%s): staging slot %s", active, how, st.res.Slot)
	if err := s.refuseTrial(active); err != nil {
		return err
	}
	e, err := s.ReadEntries()
	if err != nil {
		return err
	}
	if e.NextSlot() == st.res.Slot {
		if err := s.Vars.Delete("BootNext", efivar.GlobalVariable); err != nil {
			return fmt.Errorf("clear BootNext (slot %s is about to be rewritten): %w", st.res.Slot, err)
		}
	}
	if err := st.dropStaged(); err != nil {
		return err
	}
	st.db, err = s.dbCerts()
	return err
}

// dropStaged removes the record of a trial staged for the slot about to
// be rewritten (an earlier `--no-reboot` upgrade in this boot): that
// build will never have its trial. Kept, it would make the next boot of
// the old slot (after a power cut during this staging) record a failed
// trial that never happened. BootNext is cleared first: the record goes
// only once nothing can boot the slot.
func (st *stager) dropStaged() error {
	r, err := trial.Read(st.sys.Vars)
	if err != nil || r == nil || r.Slot != st.res.Slot || r.State != trial.Staged {
		return err
	}
	if err := st.sys.Vars.Delete(trial.VarName, trial.VendorGUID); err != nil {
		return fmt.Errorf("drop the trial record of build %q (slot %s is about to be rewritten): %w", r.BuildID, st.res.Slot, err)
	}
	st.sys.logf("stage: the staged trial of build %q on slot %s is dropped: the slot is rewritten", r.BuildID, st.res.Slot)
	return nil
}

// refuseTrial refuses to stage while active is on an unblessed trial.
func (s *System) refuseTrial(active string) error {
	r, err := trial.Read(s.Vars)
	if err != nil {
		return err
	}
	if r != nil && r.Slot == active && r.State == trial.Trying {
		return fmt.Errorf("%w: slot %s is on trial since %s; run `initos bless` (or `initos slot rollback`) first: slot %s holds the last good UKI",
			ErrOnTrial, active, time.Unix(r.BootedAt, 0).UTC().Format(time.RFC3339), Other(active))
	}
	e, err := s.ReadEntries()
	if err != nil {
		return err
	}
	if d := e.DefaultSlot(); d != "" && d != active {
		return fmt.Errorf("%w: booted slot %s but BootOrder starts with slot %s; bless this slot or roll back first", ErrOnTrial, active, d)
	}
	return nil
}

// readUKI reads the UKI (bounded), checks its signature against the
// firmware's db and reads its config.
func (st *stager) readUKI(ctx context.Context) error {
	a, err := st.src.UKI(ctx)
	if err != nil {
		return err
	}
	if a.Size > MaxUKISize {
		return fmt.Errorf("%s: %d bytes, more than %d", a.Name, a.Size, MaxUKISize)
	}
	rc, err := a.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	st.uki, err = io.ReadAll(io.LimitReader(&ctxReader{ctx: ctx, r: rc}, MaxUKISize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", a.Name, err)
	}
	if st.u, err = InspectUKI(st.uki, st.db.certs); err != nil {
		return fmt.Errorf("%s: %w", a.Name, err)
	}
	st.res.UKI = st.u
	st.sys.logf("stage: UKI %s: kernel %s, security version %d, build %q, signed by %s", a.Name, st.u.Kernel, st.u.Version, st.u.BuildID, st.u.Signer)
	return nil
}

// checkRollback refuses a UKI below the TPM's minimum: it could never
// unseal the disk.
func (st *stager) checkRollback(ctx context.Context) error {
	m, checked, err := st.sys.minVersion()
	if err != nil {
		return err
	}
	st.res.MinVersion, st.res.RollbackChecked = m.Min, checked
	if checked && st.u.Version < m.Min {
		return fmt.Errorf("%w: the new UKI has security version %d, below the minimum %d in TPM NV index %#08x: it could never unseal the disk; refused",
			ErrRollback, st.u.Version, m.Min, uint32(m.Handle))
	}
	if !checked {
		st.sys.logf("stage: no TPM: the anti-rollback minimum was not checked")
	}
	return nil
}

// write stages the files on every ESP of the slot.
func (st *stager) write(ctx context.Context) error {
	first := ""
	for _, esp := range st.sys.SlotESPs(st.res.Slot) {
		dir, err := st.mount(esp)
		if err != nil {
			return err
		}
		r, err := st.writeESP(ctx, esp, dir, first)
		if err != nil {
			return fmt.Errorf("ESP %s (slot %s): %w", esp.Device, esp.Slot, err)
		}
		st.res.ESPs = append(st.res.ESPs, r)
		if first == "" {
			first = dir
		}
	}
	return nil
}

// verify reads every staged file back from the disk and checks it.
func (st *stager) verify(ctx context.Context) error {
	for _, esp := range st.sys.SlotESPs(st.res.Slot) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := st.verifyESP(esp, st.mounts[esp.PartUUID]); err != nil {
			return fmt.Errorf("ESP %s (slot %s): %w", esp.Device, esp.Slot, err)
		}
	}
	st.sys.logf("stage: slot %s verified on %d ESP(s): signature, security version, modules image root hash", st.res.Slot, len(st.res.ESPs))
	return nil
}

// root installs the root image, if one is given.
func (st *stager) root(ctx context.Context) error {
	ref := st.o.RootImage
	if ref == "" {
		ref = st.src.RootImage()
	}
	if ref == "" {
		return nil
	}
	if st.o.Roots == nil {
		return fmt.Errorf("root image %s: no btrfs root store here to install it into", ref)
	}
	root, err := st.o.Roots.InstallRoot(ctx, ref, st.res.Slot)
	if err != nil {
		return fmt.Errorf("root image %s: %w", ref, err)
	}
	st.res.Root = root
	st.sys.logf("stage: root image %s installed as %s for slot %s", ref, root, st.res.Slot)
	return nil
}

// bootNext records the trial and sets BootNext: the commit point.
func (st *stager) bootNext(ctx context.Context) error {
	if st.o.NoBootNext {
		return nil
	}
	s := st.sys
	r := &trial.Record{Slot: st.res.Slot, From: st.res.From, State: trial.Staged, SecurityVersion: st.u.Version,
		BuildID: st.u.BuildID, Kernel: st.u.Kernel, StagedAt: trial.Unix(s.now())}
	if err := trial.Write(s.Vars, r); err != nil {
		return err
	}
	n, err := s.EnsureEntry(st.res.Slot)
	if err != nil {
		return err
	}
	if err := efivar.SetBootNext(s.Vars, n); err != nil {
		return fmt.Errorf("set BootNext: %w", err)
	}
	st.res.BootNext = efivar.BootName(n)
	s.logf("stage: BootNext = %s (slot %s): the next boot is its trial; BootOrder still starts with slot %s", st.res.BootNext, st.res.Slot, st.res.From)
	return nil
}

// progress reports a step's progress, if asked to.
func (st *stager) progress(step string, done, total int64) {
	if st.o.Progress != nil {
		st.o.Progress(step, done, total)
	}
}

// mount mounts an ESP of the slot writable, once.
func (st *stager) mount(esp ESP) (string, error) {
	if dir, ok := st.mounts[esp.PartUUID]; ok {
		return dir, nil
	}
	dir, release, err := st.sys.Mounter.Mount(esp, true)
	if err != nil {
		return "", fmt.Errorf("mount ESP %s (slot %s): %w", esp.Device, esp.Slot, err)
	}
	st.mounts[esp.PartUUID], st.releases = dir, append(st.releases, release)
	return dir, nil
}

// release unmounts what mount mounted.
func (st *stager) release() {
	for _, r := range st.releases {
		if err := r(); err != nil {
			st.sys.logf("stage: %v", err)
		}
	}
	st.releases = nil
}
