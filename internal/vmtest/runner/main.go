// Command runner is the /init of the vmtest harness VM: it mounts the
// pseudo filesystems, loads the kernel modules of the plan, runs the guest
// test binary with its output on the data channel (ttyS1), prints the exit
// status on the console and powers the machine off. It is a static Go
// program with no dependency on anything in the initramfs but the plan.
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
