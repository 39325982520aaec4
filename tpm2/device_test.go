package tpm2

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Device
	}{
		{"", Device{}},
		{"auto", Device{}},
		{"/dev/tpmrm0", Device{Path: "/dev/tpmrm0"}},
		{"swtpm:path=/run/s.sock", Device{Socket: "/run/s.sock"}},
		{"swtpm:host=127.0.0.1,port=2321", Device{Host: "127.0.0.1", Port: 2321}},
		{"swtpm:port=2321", Device{Host: "localhost", Port: 2321}},
	} {
		got, err := ParseDevice(tc.in)
		if err != nil {
			t.Errorf("ParseDevice(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseDevice(%q) (-want +got):\n%s", tc.in, diff)
		}
		if tc.in != "" && tc.in != "swtpm:port=2321" && got.String() != tc.in {
			t.Errorf("ParseDevice(%q).String() = %q", tc.in, got.String())
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"mssim:port=1", "unknown scheme"},
		{"swtpm:", "not key=value"},
		{"swtpm:path=", "not key=value"},
		{"swtpm:port=0", "not in 1..65535"},
		{"swtpm:port=70000", "not in 1..65535"},
		{"swtpm:host=h", "need path= or port="},
		{"swtpm:path=/s,port=1", "excludes"},
		{"swtpm:bogus=1", "unknown option"},
	} {
		if _, err := ParseDevice(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseDevice(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestParsePCRs(t *testing.T) {
	got, err := ParsePCRs("11+7,7")
	if err != nil || !cmp.Equal(got, []int{7, 11}) {
		t.Errorf("ParsePCRs(11+7,7) = %v, %v, want [7 11]", got, err)
	}
	if got, err := ParsePCRs(""); err != nil || got == nil || len(got) != 0 {
		t.Errorf(`ParsePCRs("") = %#v, %v, want empty non-nil`, got, err)
	}
	for _, in := range []string{"24", "-1", "x", "7+y"} {
		if _, err := ParsePCRs(in); err == nil {
			t.Errorf("ParsePCRs(%q) = nil error", in)
		}
	}
}

// TestTransports seals over one framing and unseals over the other, and
// counts the round trips of an unseal.
func TestTransports(t *testing.T) {
	sw := startSwtpmTCP(t)
	tcp := sw.Open(t)
	extend(t, tcp, 7, "tcp")
	secret, s, err := Seal(tcp, SealOptions{})
	if err != nil {
		t.Fatalf("Seal over TCP (simulator framing): %v", err)
	}
	c := &Counter{TPM: tcp}
	got, err := Unseal(c, s, UnsealOptions{})
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal over TCP = %x, %v, want %x", got, err, secret)
	}
	t.Logf("TPM commands per unseal (PCR policy, no PIN): %d", c.Count())
	if c.Count() > 10 {
		t.Errorf("Unseal sent %d commands, want at most 10", c.Count())
	}
}

func TestOpenDefaultAbsent(t *testing.T) {
	for _, p := range []string{DefaultDevice, FallbackDevice} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists on this machine", p)
		}
	}
	if _, err := Open(Device{}); !errors.Is(err, ErrNoTPM) {
		t.Errorf("Open(auto) without TPM devices = %v, want ErrNoTPM", err)
	}
}

// TestStreamFraming checks both framings against a fake server, including
// the failure paths: oversized length, non-zero simulator status.
func TestStreamFraming(t *testing.T) {
	rsp := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
	for _, tc := range []struct {
		name    string
		f       framing
		reply   []byte
		wantErr string
	}{
		{"raw", framingRaw, rsp, ""},
		{"raw-huge", framingRaw, []byte{0x80, 0x01, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, "out of range"},
		{"mssim", framingMSSim, append(append([]byte{0, 0, 0, 10}, rsp...), 0, 0, 0, 0), ""},
		{"mssim-status", framingMSSim, append(append([]byte{0, 0, 0, 10}, rsp...), 0, 0, 0, 1), "simulator status 1"},
		{"mssim-short", framingMSSim, []byte{0, 0, 0, 2, 1, 2}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			go func() {
				buf := make([]byte, 64)
				s.Read(buf)
				s.Write(tc.reply)
				s.Close()
			}()
			got, err := newStream(c, tc.f).Send([]byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7e, 0, 0})
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(got, rsp) {
					t.Errorf("Send = %x, %v, want %x", got, err, rsp)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Send = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}
