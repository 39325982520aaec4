package control

import (
	"os"
	"strings"
	"testing"
)

func TestEventLogEvents(t *testing.T) {
	b, err := os.ReadFile("eventlog/testdata/ovmf-swtpm.bin")
	if err != nil {
		t.Fatal(err)
	}
	evs, pcrs, err := EventLogEvents(b, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 24 || evs[0].Type != "EV_S_CRTM_VERSION" {
		t.Errorf("EventLogEvents = %d events, first %+v; want 24 from EV_S_CRTM_VERSION", len(evs), evs[0])
	}
	if got := pcrs[7]; got != "65caf8dd1e0ea7a6347b635d2b379c93b9a1351edc2afc3ecda700e534eb3068" {
		t.Errorf("replayed PCR 7 = %s", got)
	}
	var sb []string
	for _, e := range evs {
		if e.PCR == 7 {
			sb = append(sb, e.Data)
		}
	}
	if !strings.HasPrefix(strings.Join(sb, ","), "SecureBoot,PK,KEK,db,dbx") {
		t.Errorf("PCR 7 events %q, want SecureBoot,PK,KEK,db,dbx first", sb)
	}
	if _, _, err := EventLogEvents(b, "md5"); err == nil || !strings.Contains(err.Error(), `unknown bank "md5"`) {
		t.Errorf("EventLogEvents(md5) = %v", err)
	}
	if _, _, err := EventLogEvents(b[:10], "sha256"); err == nil {
		t.Error("EventLogEvents(truncated) succeeded")
	}
}
