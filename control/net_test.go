package control

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestNetConfigCheck(t *testing.T) {
	tests := []struct {
		cfg  NetConfig
		want string // error substring, "" for none
	}{
		{NetConfig{}, ""},
		{NetConfig{Mode: "none"}, ""},
		{NetConfig{Mode: "static", Address: "10.0.2.15/24", Gateway: "10.0.2.2"}, ""},
		{NetConfig{Mode: "static", Address: "2001:db8::5/64", Gateway: "2001:db8::1"}, ""},
		{NetConfig{Mode: "static", Address: "10.0.2.15"}, `static address "10.0.2.15"`},
		{NetConfig{Mode: "static", Address: "10.0.2.15/24", Gateway: "gw"}, `gateway "gw"`},
		{NetConfig{Mode: "static", Address: "10.0.2.15/24", Gateway: "2001:db8::1"}, "not of one IP version"},
		{NetConfig{Mode: "bootp"}, `mode "bootp": want dhcp, static or none`},
	}
	for _, tt := range tests {
		err := tt.cfg.withDefaults().check()
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("check(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestNetWanted(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	tests := []struct {
		cfg      NetConfig
		name     string
		mac      net.HardwareAddr
		loopback bool
		want     bool
	}{
		{NetConfig{}, "eth0", mac, false, true},
		{NetConfig{}, "lo", nil, true, false},
		{NetConfig{}, "wg0", nil, false, false},
		{NetConfig{Interfaces: []string{"eth1"}}, "eth0", mac, false, false},
		{NetConfig{Interfaces: []string{"eth1", "eth0"}}, "eth0", mac, false, true},
	}
	for _, tt := range tests {
		if got := tt.cfg.wanted(tt.name, tt.mac, tt.loopback); got != tt.want {
			t.Errorf("wanted(%q, %v) with %+v = %v, want %v", tt.name, tt.mac, tt.cfg, got, tt.want)
		}
	}
}

func TestPrefixOf(t *testing.T) {
	tests := []struct {
		ip   net.IP
		mask net.IPMask
		want string
		err  string
	}{
		{net.IPv4(10, 0, 2, 15), net.IPv4Mask(255, 255, 255, 0), "10.0.2.15/24", ""},
		{net.IPv4(10, 0, 2, 15), nil, "10.0.2.15/24", ""},
		{net.IPv4(192, 168, 1, 9), net.IPv4Mask(255, 255, 0, 0), "192.168.1.9/16", ""},
		{net.ParseIP("2001:db8::1"), nil, "", "not IPv4"},
		{net.IPv4(10, 0, 2, 15), net.IPMask{255, 0, 255, 0}, "", "not a valid IPv4 mask"},
	}
	for _, tt := range tests {
		p, err := prefixOf(tt.ip, tt.mask)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("prefixOf(%v, %v) = %v, %v; want error %q", tt.ip, tt.mask, p, err, tt.err)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("prefixOf(%v, %v) = %v, %v; want %s", tt.ip, tt.mask, p, err, tt.want)
		}
	}
}

func TestRenewAfter(t *testing.T) {
	for _, tt := range []struct{ lease, want time.Duration }{
		{24 * time.Hour, 12 * time.Hour}, {time.Hour, 30 * time.Minute}, {10 * time.Second, 30 * time.Second}, {72 * time.Hour, 12 * time.Hour},
	} {
		if got := renewAfter(tt.lease); got != tt.want {
			t.Errorf("renewAfter(%v) = %v, want %v", tt.lease, got, tt.want)
		}
	}
}
