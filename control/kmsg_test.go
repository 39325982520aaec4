package control

import (
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
