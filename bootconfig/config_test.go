package bootconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFull(t *testing.T) {
	c, err := Parse(readTestdata(t, "full.json"))
	if err != nil {
		t.Fatalf("Parse(full.json) = %v", err)
	}
	if c.SecurityVersion != 1<<64-1 {
		t.Errorf("SecurityVersion = %d, want %d", c.SecurityVersion, uint64(1<<64-1))
	}
	if c.ModulesImage.HashOffset != 12582912 || !c.ModulesImage.Enabled() {
		t.Errorf("ModulesImage = %+v", c.ModulesImage)
	}
	if got := c.FailureTimeout(); got != 10*time.Minute {
		t.Errorf("FailureTimeout() = %v, want 10m", got)
	}
	if c.Control.SSHPort() != 2222 || c.Root.InitPath() != "/lib/systemd/systemd" || c.Unlock.PCR() != 15 {
		t.Errorf("accessors: port %d init %s pcr %d", c.Control.SSHPort(), c.Root.InitPath(), c.Unlock.PCR())
	}
	roundTrip(t, c)
}

func TestDefaults(t *testing.T) {
	c, err := Parse(readTestdata(t, "minimal.json"))
	if err != nil {
		t.Fatalf("Parse(minimal.json) = %v", err)
	}
	got := []any{c.Mode, c.FailureTimeout(), c.Unlock.DeviceTimeout(), c.Unlock.PCR(), c.Root.InitPath(), c.Control.SSHPort(), c.ModulesImage.Enabled()}
	want := []any{ModeInstall, DefaultFailureTimeout, DefaultDeviceTimeout, DefaultMeasurePCR, DefaultInit, DefaultSSHPort, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if never := (&Config{FailureTimeoutSec: -1}).FailureTimeout(); never >= 0 {
		t.Errorf("FailureTimeout(-1) = %v, want negative", never)
	}
	roundTrip(t, c)
	if _, err := New().Marshal(); err != nil {
		t.Errorf("New().Marshal() = %v", err)
	}
}

// roundTrip checks Parse(Marshal(c)) == c and that marshalling is stable.
func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	b, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal() = %v", err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, b)
	}
	if diff := cmp.Diff(c, c2); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	b2, _ := c2.Marshal()
	if string(b) != string(b2) {
		t.Errorf("Marshal is not stable:\n%s\n%s", b, b2)
	}
}

func TestParseErrors(t *testing.T) {
	const hash = `"root_hash":"64e1014c7722f2e6944131dedb42c218a2c2ed219fafdefd55b88be17c52f55f"`
	img := func(extra string) string {
		return `{"version":1,"mode":"boot","modules_image":{"file":"initos/m.sqfs",` + hash + `,"data_size":4096,"hash_offset":4096` + extra + `}}`
	}
	tests := []struct{ name, in, want string }{
		{"empty", ``, "truncated JSON"},
		{"not object", `[]`, "array where bootconfig.Config is expected"},
		{"syntax", `{"version":1,}`, "JSON syntax error at byte"},
		{"trailing", `{"version":1,"mode":"boot"} {}`, "data after the JSON object"},
		{"unknown", `{"version":1,"mode":"boot","moed":"x"}`, `unknown field "moed"`},
		{"unknown nested", `{"version":1,"mode":"boot","unlock":{"uuid":[]}}`, `unknown field "uuid"`},
		{"duplicate", `{"version":1,"mode":"boot","mode":"install"}`, "mode: key repeated"},
		{"duplicate nested", `{"version":1,"mode":"boot","root":{"init":"/a","init":"/b"}}`, "root.init: key repeated"},
		{"deep", `{"version":1,"mode":"boot","x":[[[[[[[[[1]]]]]]]]]}`, "nested deeper than 8 levels"},
		{"no version", `{"mode":"boot"}`, "version: missing"},
		{"version 2", `{"version":2,"mode":"boot"}`, "version: 2 is not supported"},
		{"no mode", `{"version":1}`, `mode: missing: want "boot" or "install"`},
		{"bad mode", `{"version":1,"mode":"rescue"}`, `mode: "rescue"`},
		{"type", `{"version":"1","mode":"boot"}`, "version: string where int is expected"},
		{"negative uint", `{"version":1,"mode":"boot","security_version":-1}`, "security_version: number -1 where uint64 is expected"},
		{"uint overflow", `{"version":1,"mode":"boot","security_version":18446744073709551616}`, "security_version: number 18446744073709551616"},
		{"build id control", `{"version":1,"mode":"boot","build_id":"a\nb"}`, "build_id:"},
		{"kernel slash", `{"version":1,"mode":"boot","kernel":"../x"}`, `kernel: "../x" is not a kernel release`},
		{"module space", `{"version":1,"mode":"boot","early_modules":["a b"]}`, `early_modules[0]: "a b"`},
		{"image no hash", `{"version":1,"mode":"boot","modules_image":{"file":"m"}}`, "modules_image.root_hash: missing"},
		{"image short hash", `{"version":1,"mode":"boot","modules_image":{"root_hash":"abcd"}}`, `modules_image.root_hash: "abcd": want 64 hex digits`},
		{"uppercase keys", strings.ToUpper(img("")), "VERSION: unknown field (field names are lowercase)"},
		{"image alg", img(`,"hash_algorithm":"sha1"`), `modules_image.hash_algorithm: "sha1" unsupported`},
		{"image salt", img(`,"salt":"xyz"`), `modules_image.salt: "xyz"`},
		{"image abs file", strings.Replace(img(""), "initos/m.sqfs", "/m.sqfs", 1), `modules_image.file: "/m.sqfs"`},
		{"image dotdot", strings.Replace(img(""), "initos/m.sqfs", "../m.sqfs", 1), `modules_image.file: "../m.sqfs"`},
		{"image no file", strings.Replace(img(""), `"file":"initos/m.sqfs",`, "", 1), `modules_image.file: ""`},
		{"image data size", strings.Replace(img(""), `"data_size":4096`, `"data_size":4097`, 1), "modules_image.data_size: 4097"},
		{"image hash offset", strings.Replace(img(""), `"hash_offset":4096`, `"hash_offset":0`, 1), "modules_image.hash_offset: 0"},
		{"timeout", `{"version":1,"mode":"boot","unlock":{"device_timeout_sec":-5}}`, "unlock.device_timeout_sec: -5"},
		{"pcr 11", `{"version":1,"mode":"boot","unlock":{"measure_pcr":11}}`, "unlock.measure_pcr: 11"},
		{"uuid", `{"version":1,"mode":"boot","unlock":{"uuids":["x"]}}`, `unlock.uuids[0]: "x" is not a UUID`},
		{"uuid repeated", `{"version":1,"mode":"boot","unlock":{"uuids":["3f2a1c4e-8f1b-4a53-9b7e-0c1d2e3f4a5b","3F2A1C4E-8F1B-4A53-9B7E-0C1D2E3F4A5B"]}}`, "unlock.uuids[1]:"},
		{"init relative", `{"version":1,"mode":"boot","root":{"init":"sbin/init"}}`, `root.init: "sbin/init"`},
		{"init unclean", `{"version":1,"mode":"boot","root":{"init":"/sbin/../init"}}`, `root.init:`},
		{"flags space", `{"version":1,"mode":"boot","root":{"flags":"a b"}}`, "root.flags:"},
		{"flags subvol", `{"version":1,"mode":"boot","root":{"flags":"noatime,subvol=x"}}`, "root.flags: subvol= is chosen by initos.conf"},
		{"port", `{"version":1,"mode":"boot","control":{"port":70000}}`, "control.port: 70000"},
		{"authorized key", `{"version":1,"mode":"boot","control":{"authorized_keys":["ssh-ed25519 nope"]}}`, "control.authorized_keys[0]: not an authorized_keys line"},
		{"ca key", `{"version":1,"mode":"boot","control":{"user_ca_keys":["x"]}}`, "control.user_ca_keys[0]: not a public key"},
		{"network mode", `{"version":1,"mode":"boot","control":{"network":{"mode":"wifi"}}}`, `control.network.mode: "wifi"`},
		{"dhcp address", `{"version":1,"mode":"boot","control":{"network":{"address":"10.0.0.2/24"}}}`, `control.network: address, gateway and dns are for mode "static" only`},
		{"static address", `{"version":1,"mode":"boot","control":{"network":{"mode":"static","address":"10.0.0.2"}}}`, "control.network.address:"},
		{"static gateway", `{"version":1,"mode":"boot","control":{"network":{"mode":"static","address":"10.0.0.2/24","gateway":"x"}}}`, "control.network.gateway:"},
		{"static dns", `{"version":1,"mode":"boot","control":{"network":{"mode":"static","address":"10.0.0.2/24","dns":["1.1.1.1","y"]}}}`, "control.network.dns[1]:"},
		{"interface", `{"version":1,"mode":"boot","control":{"network":{"interface":"a/b"}}}`, "control.network.interface:"},
		{"failure timeout", `{"version":1,"mode":"boot","failure_timeout_sec":-2}`, "failure_timeout_sec: -2"},
		{"watchdog no device", `{"version":1,"mode":"boot","watchdog":{"timeout_sec":10}}`, "watchdog: timeout_sec and keep_running need a device"},
		{"watchdog path", `{"version":1,"mode":"boot","watchdog":{"device":"/tmp/w"}}`, "watchdog.device:"},
		{"watchdog timeout", `{"version":1,"mode":"boot","watchdog":{"device":"/dev/watchdog","timeout_sec":4000}}`, "watchdog.timeout_sec: 4000"},
		{"not utf8", "{\"version\":1,\"mode\":\"boot\",\"build_id\":\"\xff\"}", "not UTF-8"},
		{"too big", `{"version":1,"mode":"boot","build_id":"` + strings.Repeat("a", MaxSize) + `"}`, "bytes, at most 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%.60q) = %+v, want an error", tt.in, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%.60q) = %v, not ErrInvalid", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%.60q) = %v, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestMarshalValidates(t *testing.T) {
	c := New()
	c.ModulesImage.File = "x"
	if _, err := c.Marshal(); err == nil || !strings.Contains(err.Error(), "modules_image.root_hash: missing") {
		t.Errorf("Marshal(bad) = %v, want modules_image.root_hash: missing", err)
	}
}

func TestReadFile(t *testing.T) {
	if _, err := ReadFile(filepath.Join("testdata", "full.json")); err != nil {
		t.Errorf("ReadFile(full.json) = %v", err)
	}
	_, err := ReadFile(filepath.Join(t.TempDir(), "none.json"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "read initrd config") {
		t.Errorf("ReadFile(missing) = %v, want a not-exist error", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":1}`), 0o644)
	if _, err := ReadFile(bad); err == nil || !strings.Contains(err.Error(), bad+": invalid initrd config: mode: missing") {
		t.Errorf("ReadFile(bad) = %v, want the path and the field", err)
	}
}
