package install

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		err  string
	}{
		{"500MiB", 500 << 20, ""}, {"500M", 500 << 20, ""}, {"2G", 2 << 30, ""}, {"512K", 512 << 10, ""},
		{"1048576", 1 << 20, ""}, {" 3 GiB ", 3 << 30, ""}, {"7B", 7, ""},
		{"", 0, "not a number"}, {"-1M", 0, "not a number"}, {"1.5G", 0, "not a number"}, {"9999999999T", 0, "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   Size
		want string
	}{{500 << 20, "500 MiB"}, {3 << 30, "3 GiB"}, {1000, "1000 B"}} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	good := `{"disks":["virtio-a","virtio-b"],"yes":true,"esp_size":"256MiB","uki":"initos.efi","modules":"m.sqfs",
	"image":"oci:img","secure_boot":{"keys":"keys"},"tpm":{"pcrs":"7"},"recovery_key":{"file":"rk.txt"}}`
	c, err := ParseConfig([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Disks: []string{"virtio-a", "virtio-b"}, Yes: true, ESPSize: 256 << 20, UKI: "initos.efi", Modules: "m.sqfs",
		Image: "oci:img", SecureBoot: SecureBootConfig{Keys: "keys"}, TPM: TPMConfig{PCRs: "7"}, RecoveryKey: RecoveryKeyConfig{File: "rk.txt"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ParseConfig diff (-want +got):\n%s", diff)
	}
	c.Resolve("/usb")
	if c.UKI != "/usb/initos.efi" || c.Image != "oci:/usb/img" || c.RecoveryKey.File != "/usb/rk.txt" || c.SecureBoot.Keys != "/usb/keys" {
		t.Errorf("Resolve(/usb) = %+v", c)
	}
	for _, tc := range []struct{ in, err string }{
		{`{"disk":["x"]}`, `unknown field "disk"`},
		{`{"esp_size":"big"}`, `not a number`},
		{`{"disks":["a"]} {}`, "data after the JSON object"},
		{`[1]`, "cannot unmarshal"},
		{strings.Repeat(" ", MaxConfigSize+1), "at most"},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseConfig(%.40q) error = %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "install.json")
	os.WriteFile(p, []byte(`{"disks":["auto"],"uki":"a.efi","image":"docker-archive:root.tar"}`), 0o644)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.UKI != filepath.Join(dir, "a.efi") || c.Image != "docker-archive:"+filepath.Join(dir, "root.tar") {
		t.Errorf("LoadConfig paths = %q, %q", c.UKI, c.Image)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadConfig(missing) error = %v", err)
	}
}

func TestValidate(t *testing.T) {
	base := Config{Disks: []string{"vda"}, Image: "oci:x", UKI: "u", Modules: "m"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		err  string
	}{
		{"ok", func(*Config) {}, ""},
		{"no disks", func(c *Config) { c.Disks = nil }, "no target disk"},
		{"no image", func(c *Config) { c.Image = "" }, "no root image"},
		{"no uki", func(c *Config) { c.UKI = "" }, "no UKI"},
		{"artifacts dir", func(c *Config) { c.UKI, c.Modules, c.Artifacts = "", "", "dir" }, ""},
		{"small esp", func(c *Config) { c.ESPSize = 10 << 20 }, "below the FAT32 minimum"},
		{"odd esp", func(c *Config) { c.ESPSize = 100<<20 + 1 }, "whole number of MiB"},
		{"hidden key", func(c *Config) { c.RecoveryKey.Hide = true }, "would lose the recovery key"},
		{"root name", func(c *Config) { c.RootName = "../x" }, "not a plain name"},
		{"auto and named", func(c *Config) { c.Disks = []string{"auto", "vda"} }, "cannot be combined"},
		{"auto wipe", func(c *Config) { c.Disks, c.Wipe = []string{"auto"}, true }, "never wipes"},
	} {
		c := base
		tc.edit(&c)
		c = c.withDefaults()
		err := c.validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: validate() = %v, want %q", tc.name, err, tc.err)
		}
	}
}
