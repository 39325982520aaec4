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

func init() {
	register("efi", "UEFI boot entries (Boot####, BootOrder, BootNext)", runEFI)
	describe("efi boot list", "[--efivars DIR] [--json]",
		"Prints BootCurrent, BootNext, BootOrder and every Boot#### entry: its number, * when active, its description and device path.")
	describe("efi boot add", "--disk DEVICE [--partition N] | --part-guid GUID --part-start LBA --part-size LBAS [--part-num N] [--loader PATH] [--label TEXT] [--efivars DIR]",
		"Adds a Boot#### entry (the first free number) for the loader PATH on a GPT partition, active, and puts it first in BootOrder. Prints the entry's name. The partition is read from the GPT of --disk (a device or an image file), or described by the --part-* flags.")
	describe("efi boot rm", "[--efivars DIR] ENTRY",
		"Removes the boot entry ENTRY (0001, Boot0001 or 0x1) and its place in BootOrder.")
	describe("efi boot next", "[--efivars DIR] ENTRY",
		"Sets BootNext so that the firmware boots ENTRY once, on the next boot only. ENTRY must exist.")
	describe("efi boot order", "[--efivars DIR] [ENTRY,ENTRY...]",
		"Prints BootOrder, or sets it to the comma-separated entries.")
}

func runEFI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "boot" {
		args = args[1:]
	} else if len(args) > 0 && !isHelp(args[0]) {
		fmt.Fprintln(stderr, "usage: initos efi boot SUBCOMMAND [FLAGS] [ARGS]")
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
		return 0, fmt.Errorf("boot entry %q is not 1-4 hex digits", s)
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
		return nil, 0, usageError(fs, "%v", err)
	}
	store, err := keysStore(*vars)
	if err != nil {
		return nil, 0, fmt.Errorf("efi boot %s: %w", verb, err)
	}
	return store, n, nil
}

// efiBootJSON is what `efi boot list --json` prints; absent variables
// are left out (BootCurrent, BootNext) or empty.
type efiBootJSON struct {
	BootCurrent string         `json:"boot_current,omitempty"`
	BootNext    string         `json:"boot_next,omitempty"`
	BootOrder   []string       `json:"boot_order"`
	Entries     []efiEntryJSON `json:"entries"`
}

type efiEntryJSON struct {
	Name        string `json:"name"`
	Active      bool   `json:"active"`
	Description string `json:"description"`
	FilePath    string `json:"file_path"`
}

func efiBootList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("efi boot list", stdout, stderr)
	vars := efivarsFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	store, err := keysStore(*vars)
	if err != nil {
		return fmt.Errorf("efi boot list: %w", err)
	}
	list, err := efiReadBoot(store)
	if err != nil {
		return fmt.Errorf("efi boot list: %w", err)
	}
	if *asJSON {
		return writeJSON(stdout, list)
	}
	if list.BootCurrent != "" {
		fmt.Fprintf(stdout, "BootCurrent: %s\n", list.BootCurrent)
	}
	if list.BootNext != "" {
		fmt.Fprintf(stdout, "BootNext: %s\n", list.BootNext)
	}
	fmt.Fprintf(stdout, "BootOrder: %s\n", strings.Join(list.BootOrder, ","))
	for _, e := range list.Entries {
		active := " "
		if e.Active {
			active = "*"
		}
		fmt.Fprintf(stdout, "%s%s %s\t%s\n", e.Name, active, e.Description, e.FilePath)
	}
	return nil
}

// efiReadBoot reads BootCurrent, BootNext, BootOrder and the entries.
func efiReadBoot(store efivar.Store) (*efiBootJSON, error) {
	list := &efiBootJSON{BootOrder: []string{}, Entries: []efiEntryJSON{}}
	for _, v := range []struct {
		dst *string
		get func(efivar.Store) (uint16, bool, error)
	}{{&list.BootCurrent, efivar.BootCurrent}, {&list.BootNext, efivar.BootNext}} {
		n, ok, err := v.get(store)
		if err != nil {
			return nil, err
		}
		if ok {
			*v.dst = fmt.Sprintf("%04X", n)
		}
	}
	order, err := efivar.BootOrder(store)
	if err != nil {
		return nil, err
	}
	for _, n := range order {
		list.BootOrder = append(list.BootOrder, fmt.Sprintf("%04X", n))
	}
	entries, err := efivar.BootEntries(store)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		list.Entries = append(list.Entries, efiEntryJSON{efivar.BootName(e.Num), e.Option.Attributes&efivar.LoadOptionActive != 0,
			e.Option.Description, e.Option.FilePath.String()})
	}
	return list, nil
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
			return efivar.HardDrive{}, usageError(fs, "--part-guid is required (or --disk DEVICE)")
		case err != nil:
			return efivar.HardDrive{}, usageError(fs, "--part-guid: %v", err)
		case *partStart == 0:
			return efivar.HardDrive{}, usageError(fs, "--part-start is required")
		case *partSize == 0:
			return efivar.HardDrive{}, usageError(fs, "--part-size is required")
		case *partNum > math.MaxUint32:
			return efivar.HardDrive{}, usageError(fs, "--part-num %d: too large", *partNum)
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
			return usageError(fs, "%v", err)
		}
		order = append(order, n)
	}
	if err := efivar.SetBootOrder(store, order); err != nil {
		return fmt.Errorf("efi boot order: %w", err)
	}
	return nil
}
