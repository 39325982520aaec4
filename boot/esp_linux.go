package boot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// espMount is where the ESP is mounted read-only, under Run (it moves
// with /run into the root: the modules image's loop device keeps it busy).
const espMount = "initos/esp"

// findESP is the "esp" step: find the partition the firmware loaded the
// UKI from (systemd-stub's LoaderDevicePartUUID, else the GPT type and
// the InitOS ESP names), wait for it up to the device timeout, take the
// A/B slot from its name, and mount it read-only.
func (b *Boot) findESP(ctx context.Context) error {
	partUUID, err := loaderDevicePartUUID(filepath.Join(b.paths.Sys, efivarsDir))
	if err != nil {
		b.Log.Printf("esp: %v: looking for the ESP by type", err)
	}
	var esp *Partition
	var scanErrs []error
	ok, err := waitFor(ctx, b.Config.Unlock.DeviceTimeout(), func() (bool, error) {
		parts, errs := scanPartitions(filepath.Join(b.paths.Sys, "class/block"), b.paths.Dev)
		scanErrs = errs
		esp = chooseESP(parts, partUUID)
		return esp != nil, nil
	})
	if err != nil {
		return err
	}
	if !ok {
		what := "no EFI System Partition (GPT type " + TypeESP + ")"
		if partUUID != "" {
			what = "no partition with PARTUUID " + partUUID + " (LoaderDevicePartUUID, the ESP the firmware booted from)"
		}
		return fmt.Errorf("%s after %v: %w", what, b.Config.Unlock.DeviceTimeout(), errors.Join(scanErrs...))
	}
	b.ESP = esp
	b.Slot = slotOf(esp.Name)
	if b.Settings.Slot != "" {
		b.Slot = b.Settings.Slot
	}
	dir := filepath.Join(b.paths.Run, espMount)
	if err := mountOnce(mountSpec{esp.Device, dir, "vfat", unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""}); err != nil {
		return err
	}
	b.Log.Printf("esp: %s %q (PARTUUID %s, slot %q) mounted read-only on %s", esp.Device, esp.Name, esp.UUID, b.Slot, dir)
	return nil
}
