package main

import (
	"context"
	"fmt"
	"io"

	"initos/luks2"
)

func init() {
	luksSubs["open"] = subcommand{"map a dm-crypt device: --key-file F DEVICE NAME", luksOpen}
	luksSubs["close"] = subcommand{"remove a dm-crypt device: NAME", luksClose}
}

func luksOpen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks open", stdout, stderr)
	var u luksUnlockFlags
	u.register(fs)
	header := fs.String("header", "", "detached header `file`")
	var o luks2.ActivateOptions
	fs.BoolVar(&o.ReadOnly, "readonly", false, "map read-only")
	fs.BoolVar(&o.AllowDiscards, "allow-discards", false, "pass discards through")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	f, h, vk, err := u.open(orDefault(*header, pos[0]), false)
	if err != nil {
		return err
	}
	defer f.Close()
	defer vk.Destroy()
	node, err := h.Activate(pos[1], pos[0], vk, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, node)
	return nil
}

func luksClose(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("luks close", stdout, stderr)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	return luks2.Deactivate(pos[0])
}
