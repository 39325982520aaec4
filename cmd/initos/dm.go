package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"initos/dm"
)

func init() {
	register("dm", "device-mapper devices (like dmsetup)", runDM)
	describe("dm create", "NAME [--uuid U] [--readonly] --table TABLE | --table-file FILE",
		"Creates the mapped device /dev/mapper/NAME from a table of \"START LENGTH TYPE PARAMS\" lines (dmsetup's format; targets verity, crypt, linear, zero, error), loads it and resumes it. No udev is needed: the node is made directly.")
	describe("dm remove", "NAME...", "Removes each mapped device and its /dev/mapper node.")
	describe("dm ls", "[--json]", "Lists the mapped devices as dmsetup ls does: NAME (MAJOR:MINOR).")
	describe("dm status", "[--json] NAME", "Prints the status line of each target of NAME: START LENGTH TYPE STATUS.")
	describe("dm table", "[--json] [--showkeys] NAME", "Prints the live table of NAME: START LENGTH TYPE PARAMS. Crypt keys are shown as zeros unless --showkeys.")
}

func runDM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "dm", map[string]subcommand{
		"create": {"create a device: NAME [--uuid U] [--readonly] --table T | --table-file F", dmCreate},
		"remove": {"remove devices: NAME...", dmRemove},
		"ls":     {"list devices", dmList},
		"status": {"print the status of each target: NAME", dmStatus},
		"table":  {"print the table: [--showkeys] NAME", dmTable},
	}, args, stdout, stderr)
}

func dmCreate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dm create", stdout, stderr)
	uuid := fs.String("uuid", "", "device `UUID`")
	ro := fs.Bool("readonly", false, "load the table read-only (verity needs it)")
	table := fs.String("table", "", "the `table`: lines of \"START LENGTH TYPE PARAMS\"")
	tableFile := fs.String("table-file", "", "read the table from `FILE`")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	text, err := tableText(*table, *tableFile)
	if err != nil {
		return err
	}
	specs, err := dm.ParseTable(text)
	if err != nil {
		return fmt.Errorf("%w: dm create %s: %v", errUsage, pos[0], err)
	}
	targets := make([]dm.Target, len(specs))
	for i, s := range specs {
		targets[i] = s
	}
	_, err = dm.CreateDevice(pos[0], *uuid, *ro, targets...)
	return err
}

// tableText returns the table given by exactly one of --table and
// --table-file.
func tableText(table, file string) (string, error) {
	switch {
	case table != "" && file != "":
		return "", fmt.Errorf("%w: dm create: give --table or --table-file, not both", errUsage)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("dm create: read table: %w", err)
		}
		return string(b), nil
	case table == "":
		return "", fmt.Errorf("%w: dm create: no table: give --table or --table-file", errUsage)
	}
	return table, nil
}

func dmRemove(_ context.Context, args []string, stdout, stderr io.Writer) error {
	pos, err := parseFlags(newFlags("dm remove", stdout, stderr), args, 1, -1)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range pos {
		errs = append(errs, dm.RemoveDevice(name))
	}
	return errors.Join(errs...)
}

// dmDeviceJSON is one device of "dm ls --json".
type dmDeviceJSON struct {
	Name    string `json:"name"`
	UUID    string `json:"uuid,omitempty"`
	Major   uint32 `json:"major"`
	Minor   uint32 `json:"minor"`
	EventNr uint32 `json:"event_nr"`
}

// dmSpecJSON is one target of "dm status|table --json".
type dmSpecJSON struct {
	Start  uint64 `json:"start"`
	Length uint64 `json:"length"`
	Type   string `json:"type"`
	Params string `json:"params"`
}

func dmList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dm ls", stdout, stderr)
	asJSON := fs.Bool("json", false, "print the devices as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := dm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	devs, err := c.List()
	if err != nil {
		return err
	}
	if *asJSON {
		out := []dmDeviceJSON{}
		for _, d := range devs {
			out = append(out, dmDeviceJSON{d.Name, d.UUID, d.Major, d.Minor, d.EventNr})
		}
		return writeJSON(stdout, out)
	}
	if len(devs) == 0 {
		fmt.Fprintln(stdout, "No devices found")
	}
	for _, d := range devs {
		fmt.Fprintln(stdout, d)
	}
	return nil
}

func dmStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return dmPrintSpecs("status", args, stdout, stderr)
}

func dmTable(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return dmPrintSpecs("table", args, stdout, stderr)
}

// dmPrintSpecs prints a device's status or table lines as dmsetup does;
// crypt keys are masked unless --showkeys.
func dmPrintSpecs(verb string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dm "+verb, stdout, stderr)
	show := new(bool)
	asJSON := fs.Bool("json", false, "print the targets as JSON")
	if verb == "table" {
		show = fs.Bool("showkeys", false, "print crypt keys instead of zeros")
	}
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	c, err := dm.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	query := c.Status
	if verb == "table" {
		query = c.Table
	}
	specs, err := query(pos[0])
	if err != nil {
		return err
	}
	out := []dmSpecJSON{}
	for _, s := range specs {
		if !*show {
			s = maskKey(s)
		}
		if *asJSON {
			out = append(out, dmSpecJSON{s.Start, s.Length, s.Kind, s.Args})
			continue
		}
		fmt.Fprintln(stdout, s)
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	return nil
}

// maskKey replaces a crypt target's hex key with zeros of the same length
// (dmsetup's display); keyring references (":32:logon:desc") stay.
func maskKey(s dm.Spec) dm.Spec {
	if s.Kind != "crypt" {
		return s
	}
	f := strings.Fields(s.Args)
	if len(f) < 2 || strings.HasPrefix(f[1], ":") || f[1] == "-" {
		return s
	}
	f[1] = strings.Repeat("0", len(f[1]))
	s.Args = strings.Join(f, " ")
	return s
}
