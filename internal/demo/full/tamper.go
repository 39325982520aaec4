package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// stageTamper is stage 6: the blessed slot's UKI changed after signing
// (the firmware refuses it), then one bit of its modules image flipped
// (dm-verity refuses the block). Each is undone afterwards.
func (d *demo) stageTamper(ctx context.Context) error {
	d.n.stage("6. Tampering is refused: a UKI changed after signing (firmware), a flipped modules-image block (dm-verity)")
	disk := d.vm.m.DiskPath(1)
	off, err := partOffset(disk, "InitOS ESP B")
	if err != nil {
		return err
	}
	esp := espFile{n: d.n, disk: disk, off: off}
	d.n.say("the machine is off; its disk's ESP B (the blessed slot) is at byte %d", off)
	uki, orig := d.p("tamper.efi"), d.p("blessed.efi")
	if err := esp.get(ctx, "EFI/Linux/initos.efi", orig); err != nil {
		return err
	}
	b, err := os.ReadFile(orig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(uki, b, 0o644); err != nil {
		return err
	}
	at, err := changeCmdline(uki)
	if err != nil {
		return err
	}
	d.n.say("tamper.efi: byte %d of .cmdline changed (console= -> consolE=), the signature left as it was", at)
	if err := esp.put(ctx, uki, "EFI/Linux/initos.efi"); err != nil {
		return err
	}
	r := d.boot(ctx, 10*time.Minute)
	err = r.wait(ctx, r.c.on(`Access Denied`))
	r.stop()
	if err != nil {
		return fmt.Errorf("the firmware did not refuse the changed UKI: %w", err)
	}
	if err := esp.put(ctx, orig, "EFI/Linux/initos.efi"); err != nil {
		return err
	}

	mods, saved := d.p("tamper.sqfs"), d.p("blessed.sqfs")
	if err := esp.get(ctx, "initos/"+d.modsFile, saved); err != nil {
		return err
	}
	b, err = os.ReadFile(saved)
	if err != nil {
		return err
	}
	if err := os.WriteFile(mods, b, 0o644); err != nil {
		return err
	}
	const flip = 2048 // in the first 4 KiB block: the squashfs superblock's, read at mount
	if err := flipBit(mods, flip); err != nil {
		return err
	}
	d.n.say("%s: bit 0 of byte %d flipped (data block 0)", d.modsFile, flip)
	if err := esp.put(ctx, mods, "initos/"+d.modsFile); err != nil {
		return err
	}
	r = d.boot(ctx, 15*time.Minute)
	err = r.wait(ctx, r.c.on(`FAILED.*modules|modules.*FAILED`))
	if err == nil {
		time.Sleep(2 * time.Second) // the rest of the failure's lines
	}
	r.stop()
	if err != nil {
		return fmt.Errorf("the flipped block was not refused: %w", err)
	}
	if !r.c.contains(`verity.*corrupted`) {
		return fmt.Errorf("the modules step failed, but the console shows no dm-verity error (console: %s)", consoleLog(r))
	}
	return esp.put(ctx, saved, "initos/"+d.modsFile)
}
