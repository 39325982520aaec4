package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/internal/testenv"
)

// luksFast are tiny PBKDF costs for CLI tests.
var luksFast = []string{"--pbkdf", "argon2id", "--pbkdf-memory", "32", "--pbkdf-parallel", "1", "--pbkdf-force-iterations", "4"}

// runLuksCLI runs "initos luks ARGS...".
func runLuksCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCLI(t, append([]string{"luks"}, args...)...)
}

// mustLuks runs "initos luks ARGS..." and fails t if it fails.
func mustLuks(t *testing.T, args ...string) string {
	t.Helper()
	return mustRun(t, append([]string{"luks"}, args...)...)
}

func luksFiles(t *testing.T) (img string, key func(string) string) {
	t.Helper()
	dir := t.TempDir()
	img = filepath.Join(dir, "vol.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 20<<20); err != nil {
		t.Fatal(err)
	}
	return img, func(pass string) string {
		p := filepath.Join(dir, "key-"+pass)
		if err := os.WriteFile(p, []byte(pass), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func exitStatus(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestLuksCLI(t *testing.T) {
	img, key := luksFiles(t)
	uuid := "0f1e2d3c-4b5a-4978-8697-a5b4c3d2e1f0"
	out := mustLuks(t, append([]string{"format", "--cipher", "aes-xts-plain64", "--key-size", "256", "--sector-size", "512",
		"--label", "sys", "--uuid", uuid, "--key-file", key("one"), img}, luksFast...)...)
	if strings.TrimSpace(out) != uuid {
		t.Errorf("format printed %q, want %q", out, uuid)
	}
	cs := testenv.Tool(t, "cryptsetup")
	if b, err := exec.Command(cs, "open", "--test-passphrase", "--key-file", key("one"), img).CombinedOutput(); err != nil {
		t.Errorf("cryptsetup open --test-passphrase on CLI volume: %v %s", err, b)
	}
	mustLuks(t, "test-passphrase", "--key-file", key("one"), img)
	if _, err := runLuksCLI(t, "test-passphrase", "--key-file", key("bad"), img); exitStatus(err) != 2 {
		t.Errorf("test-passphrase(wrong) exit = %d, want 2", exitStatus(err))
	}
	mustLuks(t, append([]string{"add-key", "--key-file", key("one"), img, key("two")}, luksFast...)...)
	mustLuks(t, append([]string{"change-key", "--key-file", key("two"), img, key("three")}, luksFast...)...)
	mustLuks(t, "remove-key", "--key-file", key("one"), img)
	if out := mustLuks(t, "test-passphrase", "--key-file", key("three"), img); !strings.Contains(out, "slot 1") {
		t.Errorf("test-passphrase(three) = %q, want slot 1", out)
	}
	tok := key(`{"type":"systemd-recovery","keyslots":["1"]}`)
	mustLuks(t, "token", "add", "--json-file", tok, img)
	if out := mustLuks(t, "token", "list", img); !strings.Contains(out, "systemd-recovery") {
		t.Errorf("token list = %q", out)
	}
	mustLuks(t, "token", "remove", "--token-id", "0", img)
	rk := strings.TrimSpace(mustLuks(t, "add-recovery-key", "--key-file", key("three"), img))
	mustLuks(t, "test-passphrase", "--key-file", key(rk), img)
	mustLuks(t, "kill-slot", img, "0")
	dump := mustLuks(t, "dump", img)
	for _, want := range []string{"UUID: " + uuid, "Label: sys", "Keyslot 1:", "Digest 0: pbkdf2 sha256 iterations", "keyslots 1, segments 0"} {
		if !strings.Contains(strings.Join(strings.Fields(dump), " "), want) {
			t.Errorf("dump lacks %q:\n%s", want, dump)
		}
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(mustLuks(t, "dump", "--json", img)), &meta); err != nil || meta["keyslots"] == nil {
		t.Errorf("dump --json = %v, %v", meta, err)
	}
	backup := filepath.Join(t.TempDir(), "hdr")
	mustLuks(t, "header-backup", "--header-backup-file", backup, img)
	if _, err := runLuksCLI(t, "kill-slot", img, "1"); exitStatus(err) != 1 || !strings.Contains(err.Error(), "keyslot 1 is the last keyslot") {
		t.Errorf("kill-slot of the last keyslot = %v (exit %d), want a refusal, exit 1", err, exitStatus(err))
	}
	mustLuks(t, "kill-slot", "--force", img, "1")
	if _, err := runLuksCLI(t, "test-passphrase", "--key-file", key("three"), img); exitStatus(err) != 2 {
		t.Errorf("test-passphrase after kill-slot: exit %d, want 2", exitStatus(err))
	}
	mustLuks(t, "header-restore", "--header-backup-file", backup, img)
	mustLuks(t, "test-passphrase", "--key-file", key("three"), img)
}

func TestLuksCLIRepair(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--pbkdf", "pbkdf2", "--key-file", key("k"), img}, "--pbkdf-force-iterations", "1000")...)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XXXX"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if out := mustLuks(t, "dump", img); !strings.Contains(out, "bad magic") {
		t.Errorf("dump of damaged header does not report it:\n%s", out)
	}
	if out := mustLuks(t, "repair", img); !strings.Contains(out, "primary header: bad magic") {
		t.Errorf("repair = %q", out)
	}
	if out := mustLuks(t, "dump", img); strings.Contains(out, "Damaged") {
		t.Errorf("dump after repair still damaged:\n%s", out)
	}
	cs := testenv.Tool(t, "cryptsetup")
	if b, err := exec.Command(cs, "open", "--test-passphrase", "--key-file", key("k"), img).CombinedOutput(); err != nil {
		t.Errorf("cryptsetup after repair: %v %s", err, b)
	}
}

// TestLuksCLIErrors checks the message and exit status of each refusal:
// 2 for usage errors and wrong passphrases (like cryptsetup), 1 otherwise.
func TestLuksCLIErrors(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	for _, tt := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"format", img}, 2, "--key-file is required"},
		{[]string{"format", "--type", "luks1", "--key-file", key("k"), img}, 2, `--type "luks1": only luks2 is supported (LUKS1 is not)`},
		{[]string{"format", "--iter-time", "10", "--pbkdf-force-iterations", "4", "--key-file", key("k"), img}, 2, "--iter-time and --pbkdf-force-iterations exclude each other"},
		{[]string{"format", "--cipher", "des-cbc-plain", "--key-file", key("k"), img}, 2, `--cipher "des-cbc-plain": not supported (supported: aes-xts-plain64,`},
		{[]string{"format", "--pbkdf", "scrypt", "--key-file", key("k"), img}, 2, `--pbkdf "scrypt": want argon2id, argon2i or pbkdf2`},
		{[]string{"format", "--hash", "md5", "--key-file", key("k"), img}, 2, `--hash "md5": not supported (supported: blake2b-160,`},
		{[]string{"format", "--luks2-metadata-size", "64x", "--key-file", key("k"), img}, 2, `invalid value "64x" for flag -luks2-metadata-size: invalid size "64x": unknown unit "x"`},
		{[]string{"format", "--offset", "36028797018963968", "--key-file", key("k"), img}, 2, "--offset 36028797018963968: too large"},
		{[]string{"format", "--key-file", key("k"), img}, 1, "vol.img contains a LUKS signature; use --force (or --batch-mode) to go ahead"},
		{[]string{"format", "--force", "--key-file", key("k"), "--luks2-metadata-size", "8k", img}, 1, "metadata size 8192 is not a power of two in 16 KiB..4 MiB"},
		{[]string{"test-passphrase", "--key-file", key("wrong"), img}, 2, "unlock: no keyslot opens with this passphrase"},
		{[]string{"test-passphrase", "--key-file", key("k"), "--key-slot", "7", img}, 1, "unlock: keyslot 7: no such keyslot"},
		{[]string{"test-passphrase", "--key-file", filepath.Join(t.TempDir(), "none"), img}, 1, "read --key-file"},
		{[]string{"token", "frob", img}, 2, `unknown subcommand "frob"`},
		{[]string{"token"}, 2, "no subcommand given"},
		{[]string{"token", "remove", img}, 2, "--token-id is required"},
		{[]string{"token", "list", "--token-id", "3", img}, 1, "no token 3"},
		{[]string{"kill-slot", img, "x"}, 2, `keyslot "x" is not a number`},
		{[]string{"kill-slot", img, "0"}, 1, "keyslot 0 is the last keyslot of " + img + ": removing it leaves a volume nobody can open; use --force (or --batch-mode) to go ahead"},
		{[]string{"kill-slot", "--force", img, "5"}, 1, "kill keyslot 5: no such keyslot"},
		{[]string{"remove-key", "--key-file", key("k"), img}, 1, "keyslot 0 is the last keyslot"},
		{[]string{"remove-key", "--key-file", key("wrong"), img}, 2, "no keyslot opens with this passphrase"},
		{[]string{"header-backup", img}, 2, "--header-backup-file is required"},
		{[]string{"dump", filepath.Join(t.TempDir(), "none")}, 1, "no such file or directory"},
	} {
		_, err := runLuksCLI(t, tt.args...)
		if exitCode(err, io.Discard) != tt.status || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("initos luks %q = %v (exit %d), want exit %d and %q", tt.args, err, exitCode(err, io.Discard), tt.status, tt.want)
		}
	}
	mustLuks(t, "test-passphrase", "--key-file", key("k"), img) // every refusal left the volume as it was
}

func TestLuksCLITokenHelp(t *testing.T) {
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"luks", "token", "--help"}, &stdout, &stderr); err != nil {
		t.Fatalf("initos luks token --help = %v, want nil", err)
	}
	for _, verb := range []string{"add", "remove", "list"} {
		if !strings.Contains(stdout.String(), "  "+verb+" ") {
			t.Errorf("initos luks token --help lacks %q:\n%s", verb, stdout.String())
		}
	}
}

// TestLuksCLIDumpJSONMatchesCryptsetup compares `initos luks dump --json`
// with `cryptsetup luksDump --dump-json-metadata` on a volume with two
// keyslots and a token.
func TestLuksCLIDumpJSONMatchesCryptsetup(t *testing.T) {
	cs := testenv.Tool(t, "cryptsetup")
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("one"), img}, luksFast...)...)
	mustLuks(t, append([]string{"add-key", "--key-file", key("one"), img, key("two")}, luksFast...)...)
	mustLuks(t, "token", "add", "--json-file", key(`{"type":"systemd-recovery","keyslots":["1"]}`), img)
	if out, err := exec.Command(cs, "config", "--priority", "prefer", "--key-slot", "1", img).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup config --priority prefer: %v\n%s", err, out)
	}
	dump := strings.Join(strings.Fields(mustLuks(t, "dump", img)), " ")
	for _, want := range []string{"area 290816+258048, priority preferred", "Token 0: systemd-recovery, keyslots 1"} {
		if !strings.Contains(dump, want) {
			t.Errorf("initos luks dump lacks %q:\n%s", want, dump)
		}
	}
	var got, want any
	if err := json.Unmarshal([]byte(mustLuks(t, "dump", "--json", img)), &got); err != nil {
		t.Fatalf("initos luks dump --json: %v", err)
	}
	out, err := exec.Command(cs, "luksDump", "--dump-json-metadata", img).Output()
	if err != nil {
		t.Fatalf("cryptsetup luksDump --dump-json-metadata: %v", err)
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("cryptsetup luksDump --dump-json-metadata: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("initos luks dump --json differs from cryptsetup's JSON (-cryptsetup +initos):\n%s", diff)
	}
}

// TestLuksCLIAddKeyVolumeKey adds a keyslot unlocking with the raw volume
// key (from `cryptsetup luksDump --dump-volume-key`); a wrong volume key
// adds nothing.
func TestLuksCLIAddKeyVolumeKey(t *testing.T) {
	cs := testenv.Tool(t, "cryptsetup")
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-size", "256", "--key-file", key("one"), img}, luksFast...)...)
	vk := filepath.Join(t.TempDir(), "vk")
	if out, err := exec.Command(cs, "luksDump", "--batch-mode", "--dump-volume-key", "--volume-key-file", vk,
		"--key-file", key("one"), img).CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup luksDump --dump-volume-key: %v\n%s", err, out)
	}
	mustLuks(t, append([]string{"add-key", "--volume-key-file", vk, img, key("two")}, luksFast...)...)
	if out := mustLuks(t, "test-passphrase", "--key-file", key("two"), img); !strings.Contains(out, "slot 1") {
		t.Errorf("test-passphrase(two) = %q, want slot 1", out)
	}
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(zero, make([]byte, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runLuksCLI(t, append([]string{"add-key", "--volume-key-file", zero, img, key("three")}, luksFast...)...); exitStatus(err) == 0 {
		t.Errorf("add-key --volume-key-file (wrong key) succeeded")
	}
	if _, err := runLuksCLI(t, "test-passphrase", "--key-file", key("three"), img); exitStatus(err) != 2 {
		t.Errorf("test-passphrase(three) after a refused add-key: exit %d, want 2", exitStatus(err))
	}
}
