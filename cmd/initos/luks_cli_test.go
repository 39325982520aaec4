package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"initos/luks2"
)

// withTerminal makes the luks verbs see a terminal on stdin that holds
// input, for the confirmation prompts.
func withTerminal(t *testing.T, input string) {
	t.Helper()
	oldIn, oldTerm := luksStdin, luksTerminal
	luksStdin, luksTerminal = strings.NewReader(input), func() bool { return true }
	t.Cleanup(func() { luksStdin, luksTerminal = oldIn, oldTerm })
}

// ext4Image returns an image that carries an ext4 signature.
func ext4Image(t *testing.T) string {
	t.Helper()
	img, _ := luksFiles(t)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0x53, 0xef}, 1024+56); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLuksFormatSignature: a device with a filesystem signature is refused
// without --force, formatted with --force, -q or --batch-mode, and on a
// terminal only after YES.
func TestLuksFormatSignature(t *testing.T) {
	_, key := luksFiles(t)
	img := ext4Image(t)
	format := func(extra ...string) error {
		_, err := runLuksCLI(t, append(append([]string{"format", "--key-file", key("k")}, luksFast...), append(extra, img)...)...)
		return err
	}
	want := img + " contains a ext2/3/4 filesystem signature; use --force (or --batch-mode) to go ahead"
	if err := format(); exitStatus(err) != 1 || err.Error() != want {
		t.Errorf("format(ext4 image) = %v, want %q, exit 1", err, want)
	}
	withTerminal(t, "yes\n")
	if err := format(); !errors.Is(err, errNotConfirmed) || exitStatus(err) != 1 {
		t.Errorf("format(ext4 image, answered yes) = %v, want errNotConfirmed", err)
	}
	if _, err := luks2.ReadHeaderFile(img); err == nil {
		t.Errorf("a refused format wrote a header")
	}
	withTerminal(t, "YES\n")
	if err := format(); err != nil {
		t.Errorf("format(ext4 image, answered YES) = %v", err)
	}
	for _, flag := range []string{"--force", "-q", "--batch-mode"} {
		withTerminal(t, "")
		if err := format(flag); err != nil {
			t.Errorf("format(LUKS image, %s) = %v", flag, err)
		}
	}
}

// TestLuksLastKeyslot reproduces issue 11: remove-key on the last keyslot
// silently left a volume nobody can open. It is now refused, or done after
// YES on a terminal or with --force.
func TestLuksLastKeyslot(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	withTerminal(t, "no\n")
	if _, err := runLuksCLI(t, "remove-key", "--key-file", key("k"), img); !errors.Is(err, errNotConfirmed) {
		t.Errorf("remove-key(last, answered no) = %v, want errNotConfirmed", err)
	}
	mustLuks(t, "test-passphrase", "--key-file", key("k"), img)
	withTerminal(t, "YES\n")
	if out := mustLuks(t, "remove-key", "--key-file", key("k"), img); out != "Key slot 0 removed.\n" {
		t.Errorf("remove-key(last, YES) printed %q", out)
	}
	h, err := luks2.ReadHeaderFile(img)
	if err != nil || len(h.KeyslotIDs()) != 0 {
		t.Errorf("after remove-key of the last keyslot: %v, keyslots %v", err, h.KeyslotIDs())
	}
}

// TestLuksKeyFileLimit: key files are read whole up to cryptsetup's 8 MiB,
// from stdin too; beyond that they are refused, naming the limit.
func TestLuksKeyFileLimit(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	old := luksStdin
	t.Cleanup(func() { luksStdin = old })
	luksStdin = strings.NewReader("k")
	mustLuks(t, "test-passphrase", "--key-file", "-", img)
	luksStdin = io.MultiReader(bytes.NewReader(make([]byte, 8<<20)), strings.NewReader("x"))
	_, err := runLuksCLI(t, "test-passphrase", "--key-file", "-", img)
	want := "read --key-file - (stdin): key file larger than 8388608 bytes (8 MiB, cryptsetup's maximum)"
	if exitStatus(err) != 1 || err == nil || err.Error() != want {
		t.Errorf("test-passphrase(8 MiB + 1 on stdin) = %v, want %q", err, want)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 8<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runLuksCLI(t, "test-passphrase", "--key-file", big, img); err == nil || !strings.Contains(err.Error(), "key file larger than 8388608 bytes") {
		t.Errorf("test-passphrase(8 MiB + 1 file) = %v", err)
	}
	exact, err := readKeyBounded(bytes.NewReader(make([]byte, 8<<20)), "x")
	if err != nil || len(exact) != 8<<20 {
		t.Errorf("readKeyBounded(8 MiB) = %d bytes, %v", len(exact), err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"16384", 16384, ""}, {"64k", 64 << 10, ""}, {"64K", 64 << 10, ""}, {"4m", 4 << 20, ""}, {"4MiB", 4 << 20, ""},
		{"1g", 1 << 30, ""}, {"2t", 2 << 40, ""}, {"1MB", 1000000, ""}, {"8s", 4096, ""}, {"0", 0, ""},
		{"", 0, `invalid size ""`}, {"k", 0, `invalid size "k"`}, {"64x", 0, `unknown unit "x"`}, {"64kb", 0, `unknown unit "kb"`},
		{"1KiBB", 0, `unknown unit "KiBB"`}, {"16777216t", 0, "overflows 64 bits"}, {"-1", 0, `invalid size "-1"`},
	} {
		got, err := parseSize(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("parseSize(%q) = %d, %v, want %d, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// TestLuksSizeSuffixes reproduces issue 11: --luks2-metadata-size 64k was
// refused; the size flags take cryptsetup's suffixes.
func TestLuksSizeSuffixes(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--luks2-metadata-size", "64k", "--luks2-keyslots-size", "8m", "--key-file", key("k"), img}, luksFast...)...)
	h, err := luks2.ReadHeaderFile(img)
	if err != nil || h.MetadataSize() != 64<<10 || h.Meta.Config.KeyslotsSize != 8<<20 {
		t.Errorf("format --luks2-metadata-size 64k --luks2-keyslots-size 8m: %v, metadata %d, keyslots %d", err, h.MetadataSize(), h.Meta.Config.KeyslotsSize)
	}
}

// TestLuksTestPassphraseJSON checks --json on success and on a wrong
// passphrase (exit 2), with the keyslots' usability.
func TestLuksTestPassphraseJSON(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	var got testPassphraseResult
	if err := json.Unmarshal([]byte(mustLuks(t, "test-passphrase", "--json", "--key-file", key("k"), img)), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Unlocked || got.Keyslot == nil || *got.Keyslot != 0 || len(got.Keyslots) != 1 || !got.Keyslots[0].Usable {
		t.Errorf("test-passphrase --json = %+v", got)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"luks", "test-passphrase", "--json", "--key-file", key("bad"), img}, &stdout, &stderr)
	got = testPassphraseResult{}
	if jerr := json.Unmarshal(stdout.Bytes(), &got); jerr != nil || exitStatus(err) != 2 || got.Unlocked || got.Keyslot != nil || got.Error != "unlock: no keyslot opens with this passphrase" {
		t.Errorf("test-passphrase --json (wrong) = %s, %v (exit %d)", stdout.String(), err, exitStatus(err))
	}
}

// TestLuksTokenListFlags reproduces issue 10: token list accepted
// --json-file and --token-id and ignored them.
func TestLuksTokenListFlags(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	mustLuks(t, "token", "add", "--json-file", key(`{"type":"a","keyslots":["0"]}`), img)
	mustLuks(t, "token", "add", "--token-id", "5", "--json-file", key(`{"type":"b","keyslots":[]}`), img)
	if out := mustLuks(t, "token", "list", "--token-id", "5", img); out != "5\t{\"type\":\"b\",\"keyslots\":[]}\n" {
		t.Errorf("token list --token-id 5 = %q", out)
	}
	one, all := filepath.Join(t.TempDir(), "one.json"), filepath.Join(t.TempDir(), "all.json")
	mustLuks(t, "token", "list", "--token-id", "0", "--json-file", one, img)
	if b, _ := os.ReadFile(one); string(b) != "{\"type\":\"a\",\"keyslots\":[\"0\"]}\n" {
		t.Errorf("token list --token-id 0 --json-file wrote %q", b)
	}
	mustLuks(t, "token", "list", "--json-file", all, img)
	var m map[string]map[string]any
	if b, _ := os.ReadFile(all); json.Unmarshal(b, &m) != nil || m["0"]["type"] != "a" || m["5"]["type"] != "b" {
		t.Errorf("token list --json-file wrote %v", m)
	}
	var list []tokenJSON
	if err := json.Unmarshal([]byte(mustLuks(t, "token", "list", "--json", img)), &list); err != nil || len(list) != 2 || list[1].ID != 5 || list[1].Type != "b" {
		t.Errorf("token list --json = %+v, %v", list, err)
	}
}

// TestLuksHelp: every luks verb prints its usage with a description on
// stdout and exits 0.
func TestLuksHelp(t *testing.T) {
	verbs := []string{"format", "test-passphrase", "dump", "add-key", "remove-key", "change-key", "kill-slot", "header-backup",
		"header-restore", "repair", "add-recovery-key", "open", "close", "token add", "token remove", "token list"}
	for _, v := range verbs {
		var stdout, stderr bytes.Buffer
		args := append(append([]string{"luks"}, strings.Fields(v)...), "--help")
		err := run(context.Background(), args, &stdout, &stderr)
		d := verbDocs["luks "+v]
		if exitCode(err, io.Discard) != 0 || d.about == "" || !strings.HasPrefix(stdout.String(), "usage: initos luks "+v+" "+d.args+"\n") ||
			!strings.Contains(stdout.String(), "\nflags:\n  --") && v != "close" && v != "repair" || stderr.Len() != 0 {
			t.Errorf("initos luks %s --help: exit %d, doc %v, stdout:\n%s\nstderr:\n%s", v, exitCode(err, io.Discard), d.about != "", stdout.String(), stderr.String())
		}
	}
}

// TestLuksHostileHeaderCLI reproduces issue 10's out-of-memory crash:
// keyslots_size 1 TiB made header-backup, kill-slot and change-key
// allocate it. They now fail with a message naming the limit.
func TestLuksHostileHeaderCLI(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("k"), img}, luksFast...)...)
	setKeyslotsSize(t, img, 1<<40)
	want := "keyslots_size 1099511627776 exceeds cryptsetup's maximum 134217728 (128 MiB)"
	for _, args := range [][]string{
		{"header-backup", "--header-backup-file", filepath.Join(t.TempDir(), "b"), img},
		{"kill-slot", "--force", img, "0"},
		append([]string{"change-key", "--key-file", key("k"), img, key("new")}, luksFast...),
	} {
		if _, err := runLuksCLI(t, args...); exitStatus(err) != 1 || !strings.Contains(err.Error(), want) {
			t.Errorf("initos luks %q = %v, want exit 1 naming %q", args, err, want)
		}
	}
}

// setKeyslotsSize rewrites config.keyslots_size of both header copies
// (and their checksums) without validation.
func setKeyslotsSize(t *testing.T, img string, n uint64) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 16384} {
		area := b[off : off+16384]
		js := area[4096:]
		i := bytes.Index(js, []byte(`"keyslots_size":"`))
		j := bytes.IndexByte(js[i+17:], '"')
		repl := []byte(`"keyslots_size":"` + itoa64(n) + `"`)
		rest := append(repl, js[i+17+j+1:]...)
		copy(js[i:], rest[:len(js)-i])
		copy(area[448:512], make([]byte, 64))
		sum := sha256Sum(area)
		copy(area[448:], sum[:])
	}
	if err := os.WriteFile(img, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLuksCancelled runs format and add-key with a context cancelled by
// SIGINT or SIGTERM: nothing is written, and the exit status is 130 or 143.
func TestLuksCancelled(t *testing.T) {
	img, key := luksFiles(t)
	mustLuks(t, append([]string{"format", "--key-file", key("old"), img}, luksFast...)...)
	before, _ := os.ReadFile(img)
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
		args []string
	}{
		{syscall.SIGINT, 130, []string{"format", "--force", "--iter-time", "5000", "--key-file", key("new"), img}},
		{syscall.SIGTERM, 143, []string{"add-key", "--iter-time", "5000", "--key-file", key("old"), img, key("new")}},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(signalCause{tc.sig})
		var stdout, stderr bytes.Buffer
		err := withCause(ctx, run(ctx, append([]string{"luks"}, tc.args...), &stdout, &stderr))
		if got := exitCode(err, io.Discard); got != tc.want || !errors.Is(err, context.Canceled) {
			t.Errorf("initos luks %s cancelled by %v = %v, exit %d, want %d", tc.args[0], tc.sig, err, got, tc.want)
		}
	}
	if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
		t.Errorf("a cancelled format or add-key changed the device")
	}
}

func itoa64(n uint64) string { return strconv.FormatUint(n, 10) }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
