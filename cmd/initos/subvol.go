package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"initos/btrfsioctl"
)

func init() {
	register("subvol", "btrfs subvolumes", runSubvol)
	describe("subvol create", "PATH...", "Creates an empty subvolume at each PATH (BTRFS_IOC_SUBVOL_CREATE_V2).")
	describe("subvol snapshot", "[-r] SRC DST", "Snapshots the subvolume SRC as DST; -r makes the snapshot read-only.")
	describe("subvol delete", "[-R] PATH...",
		"Deletes each subvolume. A subvolume with nested subvolumes is refused unless -R, which deletes them first.")
	describe("subvol list", "[--json] PATH",
		"Lists the subvolumes of the filesystem holding PATH, like `btrfs subvolume list -p -u -q -R`: id, "+
			"generation, parent id, read-only flag, uuid and path relative to the top level. Needs CAP_SYS_ADMIN.")
	describe("subvol show", "[--json] PATH", "Shows the subvolume at PATH, like `btrfs subvolume show`.")
	describe("subvol set-default", "PATH", "Makes the subvolume at PATH the filesystem's default (mounted without subvol=).")
	describe("subvol get-default", "[--json] PATH", "Prints the id and path of the filesystem's default subvolume.")
	describe("subvol ro", "[true|false] PATH", "Prints ro=true|false for the subvolume at PATH, or sets or clears its read-only flag.")
}

// subvolJSON is a subvolume in the --json output of list and show.
type subvolJSON struct {
	ID                 uint64 `json:"id"`
	ParentID           uint64 `json:"parent_id"`
	Name               string `json:"name"`
	Path               string `json:"path"`
	UUID               string `json:"uuid"`
	ParentUUID         string `json:"parent_uuid"`
	ReceivedUUID       string `json:"received_uuid"`
	Generation         uint64 `json:"generation"`
	CreationGeneration uint64 `json:"creation_generation"`
	ReadOnly           bool   `json:"read_only"`
}

func toJSON(s btrfsioctl.Subvolume) subvolJSON {
	return subvolJSON{s.ID, s.ParentID, s.Name, s.Path, s.UUID.String(), s.ParentUUID.String(), s.ReceivedUUID.String(),
		s.Generation, s.CreationGeneration, s.ReadOnly}
}

func runSubvol(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "subvol", map[string]subcommand{
		"create":      {"create empty subvolumes", subvolCreate},
		"snapshot":    {"snapshot a subvolume", subvolSnapshot},
		"delete":      {"delete subvolumes", subvolDelete},
		"list":        {"list the subvolumes of a filesystem", subvolList},
		"show":        {"show one subvolume", subvolShow},
		"set-default": {"make a subvolume the default", subvolSetDefault},
		"get-default": {"print the default subvolume", subvolGetDefault},
		"ro":          {"get or set the read-only flag", subvolRO},
	}, args, stdout, stderr)
}

func subvolCreate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	pos, err := parseFlags(newFlags("subvol create", stdout, stderr), args, 1, -1)
	if err != nil {
		return err
	}
	for _, p := range pos {
		if err := btrfsioctl.Create(p); err != nil {
			return err
		}
	}
	return nil
}

func subvolSnapshot(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol snapshot", stdout, stderr)
	ro := fs.Bool("r", false, "make the snapshot read-only")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	return btrfsioctl.Snapshot(pos[0], pos[1], *ro)
}

func subvolDelete(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol delete", stdout, stderr)
	rec := fs.Bool("R", false, "also delete nested subvolumes")
	pos, err := parseFlags(fs, args, 1, -1)
	if err != nil {
		return err
	}
	del := btrfsioctl.Delete
	if *rec {
		del = btrfsioctl.DeleteRecursive
	}
	for _, p := range pos {
		err := del(p)
		if errors.Is(err, syscall.ENOTEMPTY) && !*rec {
			return fmt.Errorf("%w (nested subvolumes inside: use -R)", err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func subvolList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol list", stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	subs, err := btrfsioctl.List(pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		out := []subvolJSON{}
		for _, s := range subs {
			out = append(out, toJSON(s))
		}
		return writeJSON(stdout, out)
	}
	for _, s := range subs {
		flags := "-"
		if s.ReadOnly {
			flags = "ro"
		}
		fmt.Fprintf(stdout, "ID %d gen %d parent %d %s uuid %s path %s\n", s.ID, s.Generation, s.ParentID, flags, s.UUID, s.Path)
	}
	return nil
}

func subvolShow(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol show", stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	s, err := btrfsioctl.Info(pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, toJSON(s))
	}
	flags := "-"
	if s.ReadOnly {
		flags = "readonly"
	}
	fmt.Fprintf(stdout, "Path:\t\t%s\nName:\t\t%s\nUUID:\t\t%s\nParent UUID:\t%s\nReceived UUID:\t%s\n"+
		"Subvolume ID:\t%d\nGeneration:\t%d\nGen at creation:\t%d\nParent ID:\t%d\nFlags:\t\t%s\n",
		s.Path, s.Name, s.UUID, s.ParentUUID, s.ReceivedUUID, s.ID, s.Generation, s.CreationGeneration, s.ParentID, flags)
	return nil
}

func subvolSetDefault(_ context.Context, args []string, stdout, stderr io.Writer) error {
	pos, err := parseFlags(newFlags("subvol set-default", stdout, stderr), args, 1, 1)
	if err != nil {
		return err
	}
	id, err := btrfsioctl.ID(pos[0])
	if err != nil {
		return err
	}
	return btrfsioctl.SetDefault(pos[0], id)
}

func subvolGetDefault(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol get-default", stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	id, err := btrfsioctl.DefaultID(pos[0])
	if err != nil {
		return err
	}
	p := "<FS_TREE>"
	if id != 5 {
		if p, err = btrfsioctl.PathOf(pos[0], id); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, struct {
			ID   uint64 `json:"id"`
			Path string `json:"path"`
		}{id, strings.TrimPrefix(p, "<FS_TREE>")})
	}
	fmt.Fprintf(stdout, "ID %d path %s\n", id, p)
	return nil
}

func subvolRO(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("subvol ro", stdout, stderr)
	pos, err := parseFlags(fs, args, 1, 2)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		ro, err := btrfsioctl.ReadOnly(pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ro=%t\n", ro)
		return nil
	}
	val, path := pos[0], pos[1]
	ro, err := strconv.ParseBool(val)
	if err != nil {
		if ro, err = strconv.ParseBool(path); err != nil {
			return usageError(fs, "want true or false, got %q", val)
		}
		path = val
	}
	return btrfsioctl.SetReadOnly(path, ro)
}
