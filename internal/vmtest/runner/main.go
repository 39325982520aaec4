//go:build linux

// Command runner is the /init of the vmtest harness VM: it mounts the
// pseudo filesystems, loads the kernel modules of the plan, runs the guest
// test binary with its output on the data channel (ttyS1), prints the exit
// status on the console and restarts the machine, which ends qemu
// (-no-reboot). It is a static Go program that needs nothing in the
// initramfs but the plan and the files it names.
package main

import (
	"fmt"
	"os"
)

func main() {
	status, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest runner:", err)
		status = -1
	}
	finish(status)
}
