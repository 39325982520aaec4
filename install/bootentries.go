package install

import (
	"fmt"
	"io"
	"os"
	"slices"

	"initos/efivar"
)

// Boot entry labels and the loader they start.
const (
	LabelA = "InitOS A"
	LabelB = "InitOS B"
	// Loader is the UKI path on each ESP, as firmware writes it.
	Loader = `\EFI\Linux\initos.efi`
)

// BootEntry is a firmware boot entry the installer made or found.
type BootEntry struct {
	Num       uint16 `json:"num"`
	Name      string `json:"name"`  // "Boot0003"
	Label     string `json:"label"` // "InitOS A"
	Disk      string `json:"disk"`  // stable id
	Partition int    `json:"partition"`
	PartGUID  string `json:"partition_guid"`
	Created   bool   `json:"created"`
}

// hardDrive returns the Hard Drive device path node of partition p.
func hardDrive(l *Layout, p *Partition) (efivar.HardDrive, error) {
	g, err := efivar.ParseGUID(p.GUID)
	if err != nil {
		return efivar.HardDrive{}, fmt.Errorf("partition %d GUID %q: %w", p.Number, p.GUID, err)
	}
	return efivar.HardDrive{PartitionNumber: uint32(p.Number), PartitionStart: p.Start, PartitionSize: p.Sectors,
		PartitionSignature: g, PartitionFormat: efivar.PartitionFormatGPT, SignatureType: efivar.SignatureTypeGUID}, nil
}

// loadOption is the active boot entry label -> loader on partition hd.
func loadOption(label string, hd efivar.HardDrive) *efivar.LoadOption {
	return &efivar.LoadOption{Attributes: efivar.LoadOptionActive, Description: label,
		FilePath: efivar.DevicePath{efivar.HardDriveNode(hd), efivar.FilePathNode(Loader)}}
}

// ensureBootEntries makes "InitOS A" (and "InitOS B") start the UKI on
// ESP A (B) of disk d, keeps entries that already do, removes entries
// with these labels that point elsewhere (an older install), and puts
// them first in BootOrder, A before B.
func ensureBootEntries(s efivar.Store, d *PlannedDisk) ([]BootEntry, error) {
	existing, err := efivar.BootEntries(s)
	if err != nil {
		return nil, fmt.Errorf("read the boot entries: %w", err)
	}
	var made []BootEntry
	for i, p := range d.Layout.ESPs() {
		label := []string{LabelA, LabelB}[i]
		hd, err := hardDrive(d.Layout, p)
		if err != nil {
			return nil, err
		}
		e, err := ensureEntry(s, existing, label, hd)
		if err != nil {
			return nil, err
		}
		e.Disk, e.Partition, e.PartGUID = d.ID, p.Number, p.GUID
		made = append(made, e)
	}
	return made, setOrderFirst(s, made)
}

// ensureEntry finds or makes the entry label -> hd.
func ensureEntry(s efivar.Store, existing []efivar.BootEntry, label string, hd efivar.HardDrive) (BootEntry, error) {
	want := loadOption(label, hd)
	found := -1
	for _, e := range existing {
		if e.Option.Description != label {
			continue
		}
		if found < 0 && sameTarget(&e.Option, want) {
			found = int(e.Num)
			continue
		}
		if err := efivar.RemoveBootEntry(s, e.Num); err != nil {
			return BootEntry{}, fmt.Errorf("remove the stale entry %s %q: %w", efivar.BootName(e.Num), label, err)
		}
	}
	if found >= 0 {
		return BootEntry{Num: uint16(found), Name: efivar.BootName(uint16(found)), Label: label}, nil
	}
	n, err := efivar.AddBootEntry(s, want)
	if err != nil {
		return BootEntry{}, fmt.Errorf("add the boot entry %q: %w", label, err)
	}
	return BootEntry{Num: n, Name: efivar.BootName(n), Label: label, Created: true}, nil
}

// sameTarget compares two load options' device paths and attributes.
func sameTarget(a, b *efivar.LoadOption) bool {
	return a.Attributes&efivar.LoadOptionActive != 0 && a.FilePath.String() == b.FilePath.String()
}

// setOrderFirst puts the entries first in BootOrder, in order.
func setOrderFirst(s efivar.Store, first []BootEntry) error {
	order, err := efivar.BootOrder(s)
	if err != nil {
		return fmt.Errorf("read BootOrder: %w", err)
	}
	var want []uint16
	for _, e := range first {
		want = append(want, e.Num)
	}
	for _, n := range order {
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	if slices.Equal(order, want) {
		return nil
	}
	if err := efivar.SetBootOrder(s, want); err != nil {
		return fmt.Errorf("set BootOrder: %w", err)
	}
	return nil
}

// PartitionHardDrive reads the GPT of the disk at path and returns the
// Hard Drive device path node of partition n: what a boot entry for a
// loader on that partition needs (number, start, size, unique GUID).
func PartitionHardDrive(path string, n int) (efivar.HardDrive, error) {
	f, err := os.Open(path)
	if err != nil {
		return efivar.HardDrive{}, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return efivar.HardDrive{}, fmt.Errorf("%s: size: %w", path, err)
	}
	for _, ss := range []int{sectorSize(f), 512, 4096} {
		if ss == 0 {
			continue
		}
		if l := readGPT(f, size, ss); l != nil {
			p := l.Part(n)
			if p == nil {
				return efivar.HardDrive{}, fmt.Errorf("%s: the GPT has no partition %d", path, n)
			}
			return hardDrive(l, p)
		}
	}
	return efivar.HardDrive{}, fmt.Errorf("%s: no GPT partition table", path)
}
