package boot

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"initos/bootconfig"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"console=ttyS0 quiet\n", []string{"console=ttyS0", "quiet"}},
		{`  a=1   b="x y"  "c=d e" f=""`, []string{"a=1", "b=x y", "c=d e", "f="}},
		{"a\tb\x00", []string{"a", "b"}},
	}
	for _, tt := range tests {
		if got := ParseCmdline(tt.in).Words(); !cmp.Equal(got, tt.want) {
			t.Errorf("ParseCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	c := ParseCmdline("init=/a quiet init=/b initos.debug")
	if v, ok := c.Get("init"); !ok || v != "/b" {
		t.Errorf("Get(init) = %q, %v, want the last one, /b", v, ok)
	}
	if v, ok := c.Get("initos.debug"); !ok || v != "" {
		t.Errorf("Get(initos.debug) = %q, %v, want present and empty", v, ok)
	}
	if _, ok := c.Get("root"); ok {
		t.Errorf("Get(root) found, want absent")
	}
}

func TestSettings(t *testing.T) {
	cfg := &bootconfig.Config{Version: 1, Mode: bootconfig.ModeBoot}
	tests := []struct {
		cmdline string
		want    Settings
		err     string
	}{
		{"quiet", Settings{Mode: bootconfig.ModeBoot}, ""},
		{"initos.mode=install", Settings{Mode: bootconfig.ModeInstall}, ""},
		{"init=/lib/systemd/systemd rootflags=noatime initos.slot=b initos.debug", Settings{Mode: bootconfig.ModeBoot, Init: "/lib/systemd/systemd", RootFlags: "noatime", Slot: "b", Debug: true}, ""},
		{"initos.mode=rescue", Settings{}, `initos.mode="rescue": want boot or install`},
		{"initos.slot=c", Settings{}, `initos.slot="c": want a or b`},
		{"init=sbin/init", Settings{}, `init="sbin/init": want an absolute path`},
	}
	for _, tt := range tests {
		got, err := settings(cfg, ParseCmdline(tt.cmdline))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("settings(%q) = %v, want error %q", tt.cmdline, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("settings(%q) = %+v, %v, want %+v", tt.cmdline, got, err, tt.want)
		}
	}
}

func TestSplitOptions(t *testing.T) {
	flags, data := splitOptions(unix.MS_RDONLY, "subvol=roots/a,noatime,rw,compress=zstd:1,,nodev")
	if flags != unix.MS_NOATIME|unix.MS_NODEV || data != "subvol=roots/a,compress=zstd:1" {
		t.Errorf("splitOptions = %#x, %q", flags, data)
	}
}
