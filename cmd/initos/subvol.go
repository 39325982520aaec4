package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"

	"initos/btrfsioctl"
)

func init() { register("subvol", "btrfs subvolumes", runSubvol) }

func runSubvol(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "subvol", map[string]subcommand{
		"create":      {"create an empty subvolume: PATH", subvolCreate},
		"snapshot":    {"snapshot a subvolume: [-r] SRC DST", subvolSnapshot},
		"delete":      {"delete subvolumes: [-R] PATH...", subvolDelete},
		"list":        {"list the subvolumes of a filesystem: PATH", subvolList},
		"show":        {"show one subvolume: PATH", subvolShow},
		"set-default": {"make a subvolume the default: PATH", subvolSetDefault},
		"get-default": {"print the default subvolume: PATH", subvolGetDefault},
		"ro":          {"get or set the read-only flag: [true|false] PATH", subvolRO},
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
	pos, err := parseFlags(newFlags("subvol list", stdout, stderr), args, 1, 1)
	if err != nil {
		return err
	}
	subs, err := btrfsioctl.List(pos[0])
	if err != nil {
		return err
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
	pos, err := parseFlags(newFlags("subvol show", stdout, stderr), args, 1, 1)
	if err != nil {
		return err
	}
	s, err := btrfsioctl.Info(pos[0])
	if err != nil {
		return err
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
	pos, err := parseFlags(newFlags("subvol get-default", stdout, stderr), args, 1, 1)
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
	fmt.Fprintf(stdout, "ID %d path %s\n", id, p)
	return nil
}

func subvolRO(_ context.Context, args []string, stdout, stderr io.Writer) error {
	pos, err := parseFlags(newFlags("subvol ro", stdout, stderr), args, 1, 2)
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
			return fmt.Errorf("%w: initos subvol ro: want true or false, got %q", errUsage, val)
		}
		path = val
	}
	return btrfsioctl.SetReadOnly(path, ro)
}
