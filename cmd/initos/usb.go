package main

import (
	"context"
	"fmt"
	"io"

	"initos/install"
)

func init() {
	register("usb", "the USB installer image", runUSB)
	describe("usb build", "--uki FILE [--install-config FILE] [--recovery-sqfs FILE] [--esp-size SIZE] [--json] -o OUT",
		"Writes a bootable installer disk image: a GPT with partition 1 \"InitOS installer\", an ESP holding the installer UKI "+
			"(initos-init with initos.mode=install in its signed command line) as EFI/BOOT/BOOTX64.EFI, the install config as "+
			"initos/install.json and every local file it names (UKI, modules image, keys, OCI layout or docker archive) under "+
			"initos/payload with the config rewritten to name them; and partition 2 \"InitOS recovery\", the recovery root "+
			"(a squashfs with its verity tree appended). The ESP is read back and checked. Same inputs and SOURCE_DATE_EPOCH "+
			"give the same bytes. Write the image to a USB stick with dd.")
}

func runUSB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "usb", map[string]subcommand{
		"build": {"write the installer disk image: installer UKI, install config and payload, recovery image", usbBuild},
	}, args, stdout, stderr)
}

func usbBuild(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("usb build", stdout, stderr)
	uki := fs.String("uki", "", "installer UKI `FILE` (required)")
	cfgPath := fs.String("install-config", "", "install config `FILE` for the unattended install (paths relative to it)")
	recovery := fs.String("recovery-sqfs", "", "recovery root `FILE`: squashfs with its verity tree appended")
	recoveryImage := fs.String("recovery-image", "", "recovery root as an image `REF` or DIR (needs the squashfs writer)")
	var espSize install.Size
	fs.Var(&espSize, "esp-size", "ESP `SIZE` (default: fits the payload)")
	out := fs.String("o", "", "output image `FILE` (required)")
	asJSON := fs.Bool("json", false, "print the image layout and files as JSON")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *uki == "":
		return usageError(fs, "--uki is required")
	case *out == "":
		return usageError(fs, "-o is required")
	case *recoveryImage != "":
		return usageError(fs, "--recovery-image: turning an image into a verity squashfs needs the squashfs writer, not in this build yet; build it and pass --recovery-sqfs")
	}
	o := install.USBOptions{UKI: *uki, Recovery: *recovery, ESPSize: espSize}
	if *cfgPath != "" {
		c, err := install.LoadConfig(*cfgPath)
		if err != nil {
			return fmt.Errorf("usb build: %w", err)
		}
		o.Config = c
	}
	img, err := install.BuildUSB(*out, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, img)
	}
	fmt.Fprintf(stdout, "%s: %s, ESP %s with %d files", img.Path, img.Size.Human(), install.Size(img.Layout.Partitions[0].Sectors*512).Human(), len(img.Files))
	if img.Recovery != "" {
		fmt.Fprintf(stdout, ", recovery image (SHA-256 %s)", img.Recovery)
	}
	fmt.Fprintln(stdout)
	return nil
}
