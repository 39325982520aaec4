package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// tmpUKI is the temporary file of the new UKI while `initos upgrade`
// writes slot b's ESP (update.KernelMounter's mount, atomicfile's name).
const tmpUKI = "/run/initos/update/esp-b-*/EFI/Linux/.initos.efi.tmp-*"

// cutStaging runs `initos upgrade --from /mnt/NAME` and, once the new
// UKI's temporary file holds some bytes (but before its fsync and
// rename), stops the process (SIGSTOP: the cut lands mid-write whatever
// the host's load) and asks the host to cut the power (AB-POWERCUT).
// Nothing is synced: what the kernel had not written back is lost. It
// returns only when the upgrade ended before the cut.
func cutStaging(name string) {
	cmd := exec.Command(initos, "upgrade", "--from", filepath.Join(media, name), "--no-reboot", "--json", "--progress=false")
	cmd.Stderr = os.Stdout
	fmt.Printf("AB-CMD initos upgrade --from %s (to be cut)\n", cmd.Args[3])
	if err := cmd.Start(); err != nil {
		fmt.Printf("AB-ERROR %v\n", err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			fmt.Printf("AB-ERROR initos upgrade --from %s ended before the power cut (%v): no temporary UKI seen\n", name, err)
			return
		case <-time.After(time.Millisecond):
		}
		p, size := growing()
		if size < 64<<10 {
			continue
		}
		cmd.Process.Signal(unix.SIGSTOP)
		_, size = growing()
		fmt.Printf("AB-POWERCUT initos upgrade stopped while writing %s (%d bytes so far, not synced): cut the power\n", p, size)
		hang()
	}
}

// growing returns the temporary UKI being written and its size, if any.
func growing() (string, int64) {
	ms, _ := filepath.Glob(tmpUKI)
	for _, m := range ms {
		if fi, err := os.Stat(m); err == nil {
			return m, fi.Size()
		}
	}
	return "", 0
}
