package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"

	"initos/efivar"
)

// RefusedError reports a disk the installer will not write, before
// anything was written.
type RefusedError struct {
	Disk   string // the disk as named, with its stable id
	Reason string
}

func (e *RefusedError) Error() string { return fmt.Sprintf("refusing disk %s: %s", e.Disk, e.Reason) }

// ErrNoConsent reports a plan that was printed but not agreed to.
var ErrNoConsent = errors.New("the plan needs consent: pass --yes (or \"yes\": true in the config) to write these disks")

// loaderVendor is systemd's loader interface vendor GUID.
var loaderVendor = efivar.MustParseGUID("4a67b082-0a4c-41cf-b6c7-440b29bb8c4f")

// bootPartUUID returns the partition GUID systemd-stub says the running
// UKI was loaded from (LoaderDevicePartUUID), upper case, or "".
func bootPartUUID(efi efivar.Store) string {
	if efi == nil {
		return ""
	}
	_, data, err := efi.Get("LoaderDevicePartUUID", loaderVendor)
	if err != nil || len(data) < 2 {
		return ""
	}
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		if c := uint16(data[i]) | uint16(data[i+1])<<8; c != 0 {
			u = append(u, c)
		}
	}
	return strings.ToUpper(strings.TrimSpace(string(utf16.Decode(u))))
}

// resolveDisk turns a disk argument into a kernel name.
func (s System) resolveDisk(arg string) (string, error) {
	if strings.HasPrefix(arg, s.Dev+"/") {
		if p, err := filepath.EvalSymlinks(arg); err == nil {
			return s.wholeDiskName(arg, filepath.Base(p))
		}
		if id, ok := strings.CutPrefix(arg, filepath.Join(s.Dev, "disk", "by-id")+"/"); ok {
			return s.diskByID(arg, id)
		}
		return "", fmt.Errorf("disk %s: no such device", arg)
	}
	return s.diskByID(arg, arg)
}

func (s System) wholeDiskName(arg, name string) (string, error) {
	if _, err := os.Stat(filepath.Join(s.Sys, "block", name)); err == nil {
		return name, nil
	}
	if _, err := os.Stat(filepath.Join(s.Sys, "class", "block", name, "partition")); err == nil {
		return "", fmt.Errorf("disk %s: %s is a partition; name the whole disk (%s)", arg, name, s.diskOf(name))
	}
	return "", fmt.Errorf("disk %s: %s is not a block device in %s", arg, name, filepath.Join(s.Sys, "block"))
}

// diskByID finds the disk whose stable id or kernel name is id.
func (s System) diskByID(arg, id string) (string, error) {
	names, err := s.wholeDisksAll()
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if n == id || s.StableID(n) == id {
			return n, nil
		}
	}
	return "", fmt.Errorf("disk %s: no disk has this name or stable id", arg)
}

// probeDisk reads a disk's content.
func probeDisk(d *Disk) error {
	f, err := os.Open(d.Path)
	if err != nil {
		return fmt.Errorf("disk %s: %w", d.Path, err)
	}
	defer f.Close()
	c, err := Probe(f, int64(d.Size), d.SectorSize)
	if err != nil {
		return fmt.Errorf("disk %s: %w", d.Path, err)
	}
	d.Content = c
	return nil
}

// markBoot sets InUse on disks that are busy or hold the partition the
// firmware booted us from.
func markBoot(disks []*Disk, busy map[string]string, bootPart string) {
	for _, d := range disks {
		if why := busy[d.Name]; why != "" {
			d.InUse = why
		}
		if bootPart == "" || d.Content.Layout == nil {
			continue
		}
		for _, p := range d.Content.Layout.Partitions {
			if p.GUID == bootPart {
				d.InUse = fmt.Sprintf("it is the disk we booted from (LoaderDevicePartUUID %s is its partition %d)", bootPart, p.Number)
			}
		}
	}
}

// describeAll describes and probes the named disks (or, with auto, every
// real disk) and marks the busy ones.
func (s System) describeAll(efi efivar.Store, args []string) ([]*Disk, error) {
	var names []string
	if len(args) == 1 && args[0] == "auto" {
		var err error
		if names, err = s.wholeDisks(); err != nil {
			return nil, err
		}
	} else {
		seen := map[string]string{}
		for _, a := range args {
			n, err := s.resolveDisk(a)
			if err != nil {
				return nil, err
			}
			if prev, dup := seen[n]; dup {
				return nil, fmt.Errorf("disks %s and %s are the same disk (%s)", prev, a, n)
			}
			seen[n] = a
			names = append(names, n)
		}
	}
	busy, err := s.busyDisks()
	if err != nil {
		return nil, err
	}
	var disks []*Disk
	for _, n := range names {
		d, err := s.describeDisk(n)
		if err != nil {
			return nil, err
		}
		if d.Size > 0 {
			if err := probeDisk(d); err != nil {
				return nil, err
			}
		}
		disks = append(disks, d)
	}
	markBoot(disks, busy, bootPartUUID(efi))
	return disks, nil
}
