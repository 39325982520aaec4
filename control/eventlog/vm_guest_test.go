//go:build vmguest

package eventlog

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"syscall"
	"testing"
)

const securityfsLog = "/sys/kernel/security/tpm0/binary_bios_measurements"

// TestGuestReplay parses the firmware's (OVMF's) event log and checks that
// its replay gives the live PCRs 0-7 of the TPM (swtpm).
func TestGuestReplay(t *testing.T) {
	if _, err := os.Stat(securityfsLog); err != nil {
		if err := syscall.Mount("securityfs", "/sys/kernel/security", "securityfs", 0, ""); err != nil {
			t.Fatalf("mount securityfs: %v", err)
		}
	}
	b, err := os.ReadFile(securityfsLog)
	if err != nil {
		t.Fatal(err)
	}
	events, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(%d bytes of the firmware log): %v", len(b), err)
	}
	pcrs, err := Replay(events, SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i <= 7; i++ {
		live, err := os.ReadFile("/sys/class/tpm/tpm0/pcr-sha256/" + string(rune('0'+i)))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := hex.DecodeString(strings.TrimSpace(string(live)))
		if got := pcrs[i]; !bytes.Equal(got, want) {
			t.Errorf("Replay PCR %d = %x, live %x", i, got, want)
		}
	}
	t.Logf("%d events, PCR 7 = %x", len(events), pcrs[7])
}
