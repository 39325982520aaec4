package control

import (
	"os"
	"strings"
	"testing"
)

func TestParseKmsg(t *testing.T) {
	tests := []struct {
		in   string
		want KmsgRecord
		err  string
	}{
		{"6,339,5140900,-;NET: Registered protocol family 10\n", KmsgRecord{6, 339, 5140900, "NET: Registered protocol family 10"}, ""},
		{"7,160,424069,-,caller=T1;pci_root PNP0A03:00: host bridge\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n", KmsgRecord{7, 160, 424069, "pci_root PNP0A03:00: host bridge"}, ""},
		{"12,0,0,c;", KmsgRecord{12, 0, 0, ""}, ""},
		{"no separator", KmsgRecord{}, "no ';' after the prefix"},
		{"6,1;x", KmsgRecord{}, "prefix has 2 fields"},
		{"x,1,2,-;m", KmsgRecord{}, "priority"},
		{"6,-1,2,-;m", KmsgRecord{}, "sequence"},
		{"6,1,2.5,-;m", KmsgRecord{}, "timestamp"},
	}
	for _, tt := range tests {
		got, err := ParseKmsg([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseKmsg(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseKmsg(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if s := (KmsgRecord{Usec: 5140900, Text: "hi"}).String(); s != "[    5.140900] hi" {
		t.Errorf("String() = %q, want dmesg style", s)
	}
}

func FuzzParseKmsg(f *testing.F) {
	f.Add([]byte("6,339,5140900,-;NET: Registered protocol family 10\n"))
	f.Add([]byte("7,160,424069,-,caller=T1;pci\n SUBSYSTEM=acpi\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseKmsg(b)
		if err == nil && strings.Contains(r.Text, "\n") {
			t.Errorf("ParseKmsg(%q).Text = %q has a newline", b, r.Text)
		}
		_ = r.String()
	})
}

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
