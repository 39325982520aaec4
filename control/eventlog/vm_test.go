package eventlog

import (
	"testing"

	"initos/internal/vmtest"
)

// TestVM boots OVMF with an swtpm and replays the firmware's event log in
// the guest against the live PCRs.
func TestVM(t *testing.T) {
	vmtest.Run(t, vmtest.Config{Firmware: vmtest.OVMF(), TPM: true})
}
