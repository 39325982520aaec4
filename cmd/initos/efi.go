package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"initos/efivar"
)

func init() { register("efi", "UEFI boot entries (Boot####, BootOrder, BootNext)", runEFI) }

func runEFI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "boot" {
		args = args[1:]
	} else if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		return fmt.Errorf("%w: initos efi: unknown subcommand %q (want: boot)", errUsage, args[0])
	}
	return dispatch(ctx, "efi boot", map[string]subcommand{
		"list":  {"show BootCurrent, BootNext, BootOrder and the entries", efiBootList},
		"add":   {"add a Boot#### entry for a loader on a GPT partition, first in BootOrder", efiBootAdd},
		"rm":    {"remove a Boot#### entry", efiBootRm},
		"next":  {"boot an entry once on the next boot (BootNext)", efiBootNext},
		"order": {"print or set BootOrder", efiBootOrder},
	}, args, stdout, stderr)
}

// efiParseNum parses a boot entry number: "0001", "Boot0001" or "0x1".
func efiParseNum(s string) (uint16, error) {
	hex := strings.TrimPrefix(strings.TrimPrefix(s, "Boot"), "0x")
	n, err := strconv.ParseUint(hex, 16, 16)
	if err != nil {
		return 0, fmt.Errorf("%w: boot entry %q is not 1-4 hex digits", errUsage, s)
	}
	return uint16(n), nil
}

// efiEntryArgs parses the command line of a verb that takes one boot
// entry ("efi boot rm 0001") and opens the variable store.
func efiEntryArgs(verb string, args []string, stdout, stderr io.Writer) (efivar.Store, uint16, error) {
	fs := newFlags("efi boot "+verb, stdout, stderr)
	vars := efivarsFlag(fs)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return nil, 0, err
	}
	n, err := efiParseNum(pos[0])
	if err != nil {
		return nil, 0, err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return nil, 0, fmt.Errorf("efi boot %s: %w", verb, err)
	}
	return store, n, nil
}

func efiBootList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("efi boot list", stdout, stderr)
	vars := efivarsFlag(fs)
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("efi boot list: %w", err)
	}
	for _, v := range []struct {
		name string
		get  func(efivar.Store) (uint16, bool, error)
	}{{"BootCurrent", efivar.BootCurrent}, {"BootNext", efivar.BootNext}} {
		if n, ok, err := v.get(store); err != nil {
			return fmt.Errorf("efi boot list: %w", err)
		} else if ok {
			fmt.Fprintf(stdout, "%s: %04X\n", v.name, n)
		}
	}
	order, err := efivar.BootOrder(store)
	if err != nil {
		return fmt.Errorf("efi boot list: %w", err)
	}
	fmt.Fprintf(stdout, "BootOrder: %s\n", efiFormatOrder(order))
	entries, err := efivar.BootEntries(store)
	if err != nil {
		return fmt.Errorf("efi boot list: %w", err)
	}
	for _, e := range entries {
		active := " "
		if e.Option.Attributes&efivar.LoadOptionActive != 0 {
			active = "*"
		}
		fmt.Fprintf(stdout, "%s%s %s\t%s\n", efivar.BootName(e.Num), active, e.Option.Description, e.Option.FilePath)
	}
	return nil
}

func efiFormatOrder(order []uint16) string {
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = fmt.Sprintf("%04X", n)
	}
	return strings.Join(parts, ",")
}

func efiBootAdd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("efi boot add", stdout, stderr)
	vars := efivarsFlag(fs)
	label := fs.String("label", "InitOS", "entry description")
	loader := fs.String("loader", `\EFI\Linux\initos.efi`, "loader `PATH` on the ESP")
	partGUID := fs.String("part-guid", "", "unique `GUID` of the GPT partition (required)")
	partNum := fs.Uint("part-num", 1, "partition `NUMBER`")
	partStart := fs.Uint64("part-start", 0, "partition start `LBA` (required)")
	partSize := fs.Uint64("part-size", 0, "partition size in `LBA`s (required)")
	var disk efiDiskFlags
	disk.register(fs)
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	hd, err := disk.hardDrive(fs, func() (efivar.HardDrive, error) {
		g, err := efivar.ParseGUID(*partGUID)
		switch {
		case *partGUID == "":
			return efivar.HardDrive{}, fmt.Errorf("%w: efi boot add: --part-guid (or --disk) is required", errUsage)
		case err != nil:
			return efivar.HardDrive{}, fmt.Errorf("%w: efi boot add: --part-guid: %v", errUsage, err)
		case *partStart == 0:
			return efivar.HardDrive{}, fmt.Errorf("%w: efi boot add: --part-start is required", errUsage)
		case *partSize == 0:
			return efivar.HardDrive{}, fmt.Errorf("%w: efi boot add: --part-size is required", errUsage)
		case *partNum > math.MaxUint32:
			return efivar.HardDrive{}, fmt.Errorf("%w: efi boot add: --part-num %d: too large", errUsage, *partNum)
		}
		return efivar.HardDrive{PartitionNumber: uint32(*partNum), PartitionStart: *partStart, PartitionSize: *partSize,
			PartitionSignature: g, PartitionFormat: efivar.PartitionFormatGPT, SignatureType: efivar.SignatureTypeGUID}, nil
	})
	if err != nil {
		return err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("efi boot add: %w", err)
	}
	n, err := efivar.AddBootEntry(store, &efivar.LoadOption{
		Attributes: efivar.LoadOptionActive, Description: *label,
		FilePath: efivar.DevicePath{efivar.HardDriveNode(hd), efivar.FilePathNode(*loader)},
	})
	if err != nil {
		return fmt.Errorf("efi boot add: %w", err)
	}
	fmt.Fprintln(stdout, efivar.BootName(n))
	return nil
}

func efiBootRm(_ context.Context, args []string, stdout, stderr io.Writer) error {
	store, n, err := efiEntryArgs("rm", args, stdout, stderr)
	if err != nil {
		return err
	}
	if err := efivar.RemoveBootEntry(store, n); err != nil {
		return fmt.Errorf("efi boot rm: %w", err)
	}
	return nil
}

func efiBootNext(_ context.Context, args []string, stdout, stderr io.Writer) error {
	store, n, err := efiEntryArgs("next", args, stdout, stderr)
	if err != nil {
		return err
	}
	if _, err := efivar.ReadBootEntry(store, n); err != nil {
		return fmt.Errorf("efi boot next: %w", err)
	}
	if err := efivar.SetBootNext(store, n); err != nil {
		return fmt.Errorf("efi boot next: %w", err)
	}
	return nil
}

func efiBootOrder(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("efi boot order", stdout, stderr)
	vars := efivarsFlag(fs)
	pos, err := parseFlags(fs, args, 0, 1)
	if err != nil {
		return err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("efi boot order: %w", err)
	}
	if len(pos) == 0 {
		order, err := efivar.BootOrder(store)
		if err != nil {
			return fmt.Errorf("efi boot order: %w", err)
		}
		fmt.Fprintln(stdout, efiFormatOrder(order))
		return nil
	}
	var order []uint16
	for _, s := range strings.Split(pos[0], ",") {
		n, err := efiParseNum(s)
		if err != nil {
			return err
		}
		order = append(order, n)
	}
	if err := efivar.SetBootOrder(store, order); err != nil {
		return fmt.Errorf("efi boot order: %w", err)
	}
	return nil
}
