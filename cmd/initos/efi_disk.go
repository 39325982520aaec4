package main

import (
	"flag"
	"fmt"

	"initos/efivar"
	"initos/install"
)

// efiDiskFlags are --disk and --partition of "efi boot add": the entry's
// partition number, start, size and unique GUID come from the disk's GPT
// instead of being typed by hand.
type efiDiskFlags struct {
	disk string
	part uint
}

func (d *efiDiskFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.disk, "disk", "", "read the partition from this disk's GPT (`DEVICE` or image file)")
	fs.UintVar(&d.part, "partition", 1, "partition `NUMBER` on --disk")
}

// hardDrive returns the Hard Drive node: from the GPT with --disk, else
// from the --part-* flags (def), which must then not be mixed with --disk.
func (d *efiDiskFlags) hardDrive(fs *flag.FlagSet, def func() (efivar.HardDrive, error)) (efivar.HardDrive, error) {
	if d.disk == "" {
		return def()
	}
	mixed := false
	fs.Visit(func(f *flag.Flag) {
		mixed = mixed || f.Name == "part-guid" || f.Name == "part-start" || f.Name == "part-size" || f.Name == "part-num"
	})
	if mixed {
		return efivar.HardDrive{}, usageError(fs, "--disk reads the partition from the GPT: leave out --part-guid, --part-num, --part-start, --part-size")
	}
	hd, err := install.PartitionHardDrive(d.disk, int(d.part))
	if err != nil {
		return efivar.HardDrive{}, fmt.Errorf("efi boot add: %w", err)
	}
	return hd, nil
}
