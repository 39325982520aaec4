package eventlog_test

import (
	"fmt"
	"os"

	"initos/control/eventlog"
)

// Replay the firmware's log and print PCR 7 as the log claims it.
func Example() {
	b, err := os.ReadFile("testdata/ovmf-swtpm.bin")
	if err != nil {
		fmt.Println(err)
		return
	}
	events, err := eventlog.Parse(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	pcrs, _ := eventlog.Replay(events, eventlog.SHA256)
	fmt.Printf("%d events, first %s %s, PCR 7 %x\n", len(events), eventlog.TypeName(events[0].Type), events[0].Describe(), pcrs[7][:4])
	// Output: 24 events, first EV_S_CRTM_VERSION 2 bytes, PCR 7 65caf8dd
}
