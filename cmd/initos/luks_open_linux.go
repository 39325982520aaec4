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
	describe("luks open", "(--key-file F | --volume-key-file VK) [--header H] [--readonly] [--allow-discards] DEVICE NAME",
		"Unlocks DEVICE and maps it with dm-crypt as /dev/mapper/NAME (dm UUID CRYPT-LUKS2-<uuid>-NAME, like cryptsetup open); an image file is attached to an autoclear loop device. Volumes with dm-integrity or a reencryption in progress are refused, naming the feature.")
	describe("luks close", "NAME", "Removes the dm-crypt mapping /dev/mapper/NAME.")
}

func luksOpen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	f, h, vk, err := u.open(ctx, orDefault(*header, pos[0]), false)
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
