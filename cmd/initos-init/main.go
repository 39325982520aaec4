// Command initos-init is the InitOS initrd: the one static binary the
// kernel runs as /init from the signed UKI's initrd. It has no shell and
// runs no other program: it mounts the kernel filesystems, measures the
// boot phase, loads modules, opens the verity-protected modules image on
// the ESP, unseals the disk keys with the TPM, opens the LUKS2 volumes,
// mounts the btrfs root named by initos.conf and switches into it (see
// package initos/boot and docs/boot.md). When a step fails it prints one
// line saying which and why, waits (the control plane's seam) and reboots.
//
// Outside an initrd (not process 1) it only prints what it is and exits 2.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"initos/boot"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "initos-init: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if os.Getpid() != 1 {
		return fmt.Errorf("not process 1: this is the initrd's /init, which the kernel starts (see docs/boot.md)")
	}
	b := boot.New(boot.Options{Console: stdout, OnFailure: boot.ServeControl})
	act, _ := b.Run(ctx) // a failure was logged by Run
	b.Log.Printf("%v now", act)
	finish(act)
	return nil
}

// finish reboots or powers off; process 1 must never exit (the kernel
// would panic), so it waits forever if that fails.
func finish(act boot.Action) {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_RESTART
	if act == boot.PowerOff {
		cmd = unix.LINUX_REBOOT_CMD_POWER_OFF
	}
	unix.Reboot(cmd)
	for {
		time.Sleep(time.Hour)
	}
}
