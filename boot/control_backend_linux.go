package boot

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-tpm/tpm2/transport"
	"golang.org/x/sys/unix"

	"initos/control"
	"initos/efivar"
	"initos/enroll"
	"initos/tpm2"
)

// controlBackend is the control plane's view of a failed boot
// (control.Backend): its status, unlock with a passphrase or recovery
// key, the PCRs, reseal, logs, reboot, the other slot, install.
type controlBackend struct {
	b  *Boot
	mu sync.Mutex
	f  *Failure // the failure being served
}

var _ control.Backend = (*controlBackend)(nil)

func (c *controlBackend) Status(ctx context.Context) (control.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.b
	st := control.Status{Stage: b.flow.Next(), Mode: string(b.Settings.Mode), Slot: strings.ToUpper(b.Slot),
		Kernel: b.Release, UptimeSec: sinceBoot().Seconds(), Disks: disks(filepath.Join(b.paths.Sys, "class/block"))}
	if b.Config != nil {
		st.Version, st.BuildID = b.Config.SecurityVersion, b.Config.BuildID
	}
	if f := c.f; f != nil {
		st.Failure = &control.Failure{Step: f.Step, Message: failureMessage(f)}
		for _, m := range f.PCRs {
			st.Failure.PCRs = append(st.Failure.PCRs, control.PCRMismatch{Bank: "sha256", Index: m.PCR, Expected: m.Expected, Actual: m.Actual})
		}
	}
	for _, v := range b.Volumes {
		st.Volumes = append(st.Volumes, controlVolume(v))
	}
	return st, nil
}

// failureMessage is the failure without the step prefix.
func failureMessage(f *Failure) string {
	var se *StepError
	if errors.As(f.Err, &se) {
		return se.Err.Error()
	}
	return f.Err.Error()
}

func controlVolume(v *Volume) control.Volume {
	cv := control.Volume{Device: v.Device, UUID: v.UUID, State: "locked"}
	if v.State == VolumeOpen || v.key != nil {
		cv.State = "open"
	}
	if toks, _ := enroll.Tokens(v.Header); len(toks) > 0 {
		cv.Token = tpm2.TokenType
	}
	if v.Err != nil && cv.State == "locked" {
		cv.Reason = v.Err.Error()
	}
	return cv
}

// disks lists the whole disks in sysfs.
func disks(sysBlock string) []control.Disk {
	ents, _ := os.ReadDir(sysBlock)
	var out []control.Disk
	for _, e := range ents {
		dir := filepath.Join(sysBlock, e.Name())
		if skipped(e.Name()) || exists(filepath.Join(dir, "partition")) {
			continue
		}
		size, _ := readInt(filepath.Join(dir, "size"))
		d := control.Disk{Name: e.Name(), Size: uint64(size) * 512}
		if b, err := readSmall(filepath.Join(dir, "device/model"), 256); err == nil {
			d.Model = strings.TrimSpace(string(b))
		}
		if b, err := readSmall(filepath.Join(dir, "device/serial"), 256); err == nil {
			d.Serial = strings.TrimSpace(string(b))
		}
		out = append(out, d)
	}
	return out
}

// Unlock tries key on every locked volume. The boot continues (Retry)
// when none is left locked: the unlock step then opens and measures them.
// A key typed by the owner vouches for the volume: no binding check.
func (c *controlBackend) Unlock(ctx context.Context, key []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var opened, locked []string
	for _, v := range c.b.Volumes {
		if v.State == VolumeOpen || v.key != nil {
			continue
		}
		f, err := os.Open(v.Device)
		if err != nil {
			return err
		}
		vk, _, err := v.Header.Unlock(f, key)
		f.Close()
		if err != nil {
			locked = append(locked, v.UUID)
			continue
		}
		v.key, v.manual, v.State, v.Err = vk, true, VolumeUnlocked, nil
		opened = append(opened, v.UUID)
		c.b.Log.Printf("control: volume %s unlocked with a key from the control plane", v.UUID)
	}
	switch {
	case len(opened) == 0 && len(locked) == 0:
		return errors.New("no locked volume")
	case len(opened) == 0:
		return fmt.Errorf("%w: it opens none of %s", control.ErrWrongKey, strings.Join(locked, ", "))
	case len(locked) > 0:
		return fmt.Errorf("opened %s; %s still locked: send its key", strings.Join(opened, ", "), strings.Join(locked, ", "))
	}
	return nil
}

// PCRs reports the live PCRs next to the values the volumes' tokens were
// sealed to, and the firmware's event log.
func (c *controlBackend) PCRs(ctx context.Context) (control.PCRReport, error) {
	if c.b.tpm == nil {
		return control.PCRReport{}, ErrNoTPM
	}
	idx := make([]int, 16)
	for i := range idx {
		idx[i] = i
	}
	live, err := c.b.tpm.ReadPCRs(idx)
	if err != nil {
		return control.PCRReport{}, err
	}
	expected := c.expectedPCRs()
	rep := control.PCRReport{Bank: "sha256"}
	for _, i := range idx {
		rep.PCRs = append(rep.PCRs, control.PCR{Index: i, Value: hex.EncodeToString(live[i]), Expected: expected[i]})
	}
	if log, err := os.ReadFile(control.EventLogPath); err == nil {
		rep.EventLog, _, _ = control.EventLogEvents(log, "sha256")
	}
	return rep, nil
}

// expectedPCRs returns the values the first token of a volume records.
func (c *controlBackend) expectedPCRs() map[int]string {
	out := map[int]string{}
	for _, v := range c.b.Volumes {
		toks, _ := enroll.Tokens(v.Header)
		for _, t := range toks {
			for pcr, val := range t.Sealed.PCRValues {
				if _, ok := out[pcr]; !ok {
					out[pcr] = hex.EncodeToString(val)
				}
			}
		}
	}
	return out
}

// Reseal re-enrolls the TPM token of the volumes opened with a key from
// the control plane, against the current PCR 7, with the policy of their
// token (PCR 15 literal zero, the signed PCR 11 key). It needs their keys:
// it works between unlock and the handover.
func (c *controlBackend) Reseal(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.b.tpm.(interface{ Transport() transport.TPM })
	if !ok {
		return nil, ErrNoTPM
	}
	var done []string
	for _, v := range c.b.Volumes {
		if !v.manual || v.key == nil {
			continue
		}
		f, err := os.OpenFile(v.Device, os.O_RDWR, 0)
		if err != nil {
			return done, err
		}
		e, err := enroll.Reseal(t.Transport(), f, v.Header, v.key, enroll.ResealOptions{})
		f.Close()
		if err != nil {
			return done, fmt.Errorf("volume %s: %w", v.UUID, err)
		}
		done = append(done, fmt.Sprintf("volume %s: new TPM token %d on keyslot %d", v.UUID, e.Token, e.Keyslot))
	}
	if len(done) == 0 {
		return nil, errors.New("no volume opened by unlock whose key is still held: reseal right after unlock, before the boot continues")
	}
	return done, nil
}

func (c *controlBackend) Logs(ctx context.Context, w io.Writer, follow bool) error {
	return control.ReadKmsg(ctx, w, follow)
}

func (c *controlBackend) Reboot(ctx context.Context) error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

func (c *controlBackend) PowerOff(ctx context.Context) error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// BootNext sets the firmware's BootNext to the entry "InitOS A" or
// "InitOS B".
func (c *controlBackend) BootNext(ctx context.Context, slot string) error {
	s, err := efivar.OpenEfivarfs(filepath.Join(c.b.paths.Sys, efivarsDir))
	if err != nil {
		return err
	}
	entries, err := efivar.BootEntries(s)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Option.Description == "InitOS "+slot {
			return efivar.SetBootNext(s, e.Num)
		}
	}
	return fmt.Errorf("no boot entry %q", "InitOS "+slot)
}

func (c *controlBackend) Install(ctx context.Context, config []byte, w io.Writer) error {
	if c.b.opts.InstallFrom == nil {
		return ErrNoInstaller
	}
	return c.b.opts.InstallFrom(ctx, c.b, config, w)
}
