package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"initos/efivar"
	"initos/internal/updatetest"
	"initos/update"
	"initos/update/trial"
)

// cliHost is a fake InitOS host for the A/B verbs: efivarfs and two ESPs
// in directories, booted from slot a; discoverSystem and rebootHost are
// pointed at it for the test.
type cliHost struct {
	sys     *update.System
	vars    *efivar.Dir
	esp     map[string]string
	reboots int
}

func newCLIHost(t *testing.T, db updatetest.Signer) *cliHost {
	t.Helper()
	h := &cliHost{vars: &efivar.Dir{Path: t.TempDir()}, esp: map[string]string{"a": t.TempDir(), "b": t.TempDir()}}
	uuids := map[string]string{"a": "6f3c2d1e-0000-4000-8000-00000000000a", "b": "6f3c2d1e-0000-4000-8000-00000000000b"}
	h.sys = &update.System{Vars: h.vars, Mounter: update.DirMounter{uuids["a"]: h.esp["a"], uuids["b"]: h.esp["b"]},
		ESPs: []update.ESP{
			{Slot: "a", Device: "/dev/vda1", Number: 1, PartUUID: uuids["a"], Start: 2048, Size: 1 << 20},
			{Slot: "b", Device: "/dev/vda2", Number: 2, PartUUID: uuids["b"], Start: 2048 + 1<<20, Size: 1 << 20},
		}}
	list, _ := efivar.AppendSignatureLists(nil, efivar.X509List(efivar.GUID{1}, db.Cert))
	h.vars.Set("db", efivar.ImageSecurityDB, efivar.AuthAttributes, list)
	for _, s := range []string{"a", "b"} {
		if _, err := h.sys.EnsureEntry(s); err != nil {
			t.Fatal(err)
		}
	}
	efivar.SetBootOrder(h.vars, []uint16{0, 1})
	h.boot("a", uuids["a"])
	old := updatetest.NewBuild(t, db, 1, "v1", 0)
	for _, p := range []string{update.UKIPath, update.FallbackPath} {
		os.MkdirAll(filepath.Dir(filepath.Join(h.esp["a"], p)), 0o755)
		os.WriteFile(filepath.Join(h.esp["a"], p), old.UKI, 0o644)
	}
	os.MkdirAll(filepath.Join(h.esp["a"], "initos"), 0o755)
	os.WriteFile(filepath.Join(h.esp["a"], old.Config.ModulesImage.File), old.Modules, 0o644)
	saved, savedReboot := discoverSystem, rebootHost
	discoverSystem = func() (*update.System, error) { return h.sys, nil }
	rebootHost = func(w io.Writer) error { h.reboots++; return nil }
	t.Cleanup(func() { discoverSystem, rebootHost = saved, savedReboot })
	return h
}

// boot sets LoaderDevicePartUUID to slot's ESP, as systemd-stub does.
func (h *cliHost) boot(slot, uuid string) {
	var b []byte
	for _, c := range utf16.Encode([]rune(strings.ToUpper(uuid) + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	h.vars.Set("LoaderDevicePartUUID", efivar.MustParseGUID("4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"), 6, b)
	h.vars.Delete("BootNext", efivar.GlobalVariable)
}

func runAB(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = exitCode(run(ctx, args, &o, &e), &e)
	return o.String(), e.String(), code
}

func TestUpgradeCLI(t *testing.T) {
	db := updatetest.LoadSigner(t, "db")
	h := newCLIHost(t, db)
	next := updatetest.NewBuild(t, db, 2, "v2", 0)
	out, errs, code := runAB(t, context.Background(), "upgrade", "--from", next.Dir(t), "--no-reboot", "--json")
	if code != 0 {
		t.Fatalf("upgrade --json = exit %d: %s", code, errs)
	}
	var res update.StageResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Slot != "b" || res.BootNext != "Boot0001" || res.UKI.BuildID != "v2" {
		t.Errorf("upgrade --json = %s (%v)", out, err)
	}
	if h.reboots != 0 {
		t.Errorf("upgrade --no-reboot rebooted")
	}
	out, _, code = runAB(t, context.Background(), "upgrade", "--from", next.Dir(t))
	if code != 0 || h.reboots != 1 || !strings.Contains(out, "staged slot b") || !strings.Contains(out, "BootNext = Boot0001") {
		t.Errorf("upgrade = exit %d, %d reboots, %q", code, h.reboots, out)
	}
	// The trial boot of b fails its health gate.
	h.boot("b", h.sys.ESPs[1].PartUUID)
	trial.Begin(h.vars, trial.Boot{Slot: "b"})
	out, errs, code = runAB(t, context.Background(), "upgrade", "--from", next.Dir(t), "--no-reboot")
	if code != exitOnTrial || !strings.Contains(errs, "slot b is on trial") {
		t.Errorf("upgrade on trial = exit %d, %q, want %d", code, errs, exitOnTrial)
	}
	out, errs, code = runAB(t, context.Background(), "bless", "--watchdog", "-", "--health-cmd", "echo disk full; exit 7")
	if code != exitRefused || h.reboots != 2 || !strings.Contains(out, "failed its trial") || !strings.Contains(errs, "disk full") {
		t.Errorf("bless with a failing gate = exit %d, %d reboots, %q %q", code, h.reboots, out, errs)
	}
	h.boot("a", h.sys.ESPs[0].PartUUID)
	out, _, code = runAB(t, context.Background(), "slot", "status")
	for _, want := range []string{"booted:  slot a", "default: slot a", "last trial: slot b (from a), build \"v2\"", "failed", "health gate:", "exit status 7: disk full"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("slot status = exit %d, missing %q:\n%s", code, want, out)
		}
	}
	// A good trial this time.
	runAB(t, context.Background(), "upgrade", "--from", next.Dir(t), "--no-reboot")
	h.boot("b", h.sys.ESPs[1].PartUUID)
	trial.Begin(h.vars, trial.Boot{Slot: "b"})
	out, errs, code = runAB(t, context.Background(), "bless", "--watchdog", "-", "--health-cmd", "true", "--json")
	var b update.BlessResult
	if json.Unmarshal([]byte(out), &b); code != 0 || !b.Blessed {
		t.Errorf("bless = exit %d, %s %s", code, out, errs)
	}
	out, _, code = runAB(t, context.Background(), "slot", "status", "--json", "--verify")
	var st update.Status
	if json.Unmarshal([]byte(out), &st); code != 0 || st.Active != "b" || st.Default != "b" || st.Outcome != "blessed" || st.Slots[1].Modules != "verified" {
		t.Errorf("slot status --json = exit %d: %s", code, out)
	}
	out, errs, code = runAB(t, context.Background(), "slot", "rollback", "--no-reboot")
	if code != 0 || !strings.Contains(out, "slot a is the default again") {
		t.Errorf("slot rollback = exit %d, %q %q", code, out, errs)
	}
}

func TestUpgradeCLIRefused(t *testing.T) {
	db, other := updatetest.LoadSigner(t, "db"), updatetest.LoadSigner(t, "other")
	newCLIHost(t, db)
	_, errs, code := runAB(t, context.Background(), "upgrade", "--from", updatetest.NewBuild(t, other, 2, "x", 0).Dir(t), "--no-reboot")
	if code != exitRefused || !strings.Contains(errs, "signer is not trusted") {
		t.Errorf("upgrade of another key's UKI = exit %d, %q, want %d", code, errs, exitRefused)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errs, code = runAB(t, ctx, "upgrade", "--from", updatetest.NewBuild(t, db, 2, "x", 0).Dir(t), "--no-reboot")
	if code != exitSignal {
		t.Errorf("upgrade interrupted = exit %d, %q, want %d", code, errs, exitSignal)
	}
	_, errs, code = runAB(t, context.Background(), "slot", "rollback", "--no-reboot")
	if code != exitRefused || !strings.Contains(errs, "slot b cannot boot") {
		t.Errorf("slot rollback to an empty slot = exit %d, %q", code, errs)
	}
}

func TestPublishCLI(t *testing.T) {
	db := updatetest.LoadSigner(t, "db")
	b := updatetest.NewBuild(t, db, 3, "v3", 0)
	d := b.Dir(t)
	layout := filepath.Join(t.TempDir(), "layout")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	out, errs, code := runAB(t, context.Background(), "publish", "--uki", b.UKIFile(d), "--modules", b.ModulesFile(d), "oci:"+layout)
	if code != 0 || !strings.HasPrefix(out, "oci:"+layout+"@sha256:") || !strings.Contains(errs, "security version 3") {
		t.Fatalf("publish = exit %d, %q %q", code, out, errs)
	}
	wrong := updatetest.NewBuild(t, db, 3, "other", 0)
	wd := wrong.Dir(t)
	_, errs, code = runAB(t, context.Background(), "publish", "--uki", b.UKIFile(d), "--modules", wrong.ModulesFile(wd), "oci:"+layout)
	if code != exitRefused || !strings.Contains(errs, "verity superblock") {
		t.Errorf("publish of a mismatched pair = exit %d, %q", code, errs)
	}
	h := newCLIHost(t, db)
	out, errs, code = runAB(t, context.Background(), "upgrade", "--from", "oci:"+layout, "--no-reboot")
	if code != 0 || !strings.Contains(out, `build "v3"`) {
		t.Errorf("upgrade from the layout = exit %d, %q %q", code, out, errs)
	}
	_ = h
}

func TestABUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"upgrade", "--help"}, 0, "usage: initos upgrade [--from FILE|DIR|REF]"},
		{[]string{"bless", "--help"}, 0, "--health-cmd CMD"},
		{[]string{"slot", "status", "--help"}, 0, "usage: initos slot status"},
		{[]string{"slot", "rollback", "--help"}, 0, "--force"},
		{[]string{"publish", "--help"}, 0, "usage: initos publish --uki U"},
		{[]string{"upgrade"}, 2, ""},
		{[]string{"upgrade", "--from", "x", "extra"}, 2, ""},
		{[]string{"bless", "--deadline", "0s"}, 2, ""},
		{[]string{"publish", "--uki", "u"}, 2, ""},
		{[]string{"publish", "oci:/tmp/x"}, 2, ""},
		{[]string{"slot", "bogus"}, 2, ""},
	} {
		out, errs, code := runAB(t, context.Background(), c.args...)
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("initos %s = exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(c.args, " "), code, out, errs, c.code, c.out)
		}
	}
}
