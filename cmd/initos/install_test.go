package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"initos/efivar"
	"initos/install"
	"initos/internal/installtest"
	"initos/internal/testenv"
	"initos/loop"
)

// runInstallCLI runs initos with args and returns stdout, stderr and the
// exit status.
func runInstallCLI(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	code := exitCode(err, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestInstallCLIUsage(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.json")
	os.WriteFile(badCfg, []byte(`{"disk":["vda"]}`), 0o644)
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"install", "--help"}, 0, "usage: initos install [FLAGS] [DISK...]"},
		{[]string{"install"}, 2, `no target disk (disks, or "auto")`},
		{[]string{"install", "--esp-size", "big", "vda"}, 2, `invalid value "big" for flag -esp-size`},
		{[]string{"install", "--config", badCfg}, 2, `unknown field "disk"`},
		{[]string{"install", "--config", filepath.Join(dir, "none.json")}, 2, "no such file"},
		{[]string{"install", "--image", "oci:x", "--uki", "u", "--modules", "m", "--hide-recovery-key", "vda"}, 2, "would lose the recovery key"},
	} {
		stdout, stderr, status := runInstallCLI(tc.args...)
		out := stdout + stderr
		if status != tc.status || !strings.Contains(out, tc.want) {
			t.Errorf("initos %q: exit %d, want %d with %q; output:\n%s", tc.args, status, tc.status, tc.want, out)
		}
	}
}

// TestInstallCLILoop runs `initos install` on a loop disk of the host:
// refused without --yes (exit 3, nothing written), then with --yes up to
// the step that needs device-mapper, which the host lacks: exit 1 naming
// the btrfs step, with the GPT and both ESPs in place, and --json showing
// the steps done. `efi boot add --disk` then reads the GPT it wrote.
func TestInstallCLILoop(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	fx := installtest.New(t, filepath.Join(dir, "fx"))
	cfg := install.Config{Image: fx.Image, UKI: "initos.efi", Modules: filepath.Base(fx.Modules), NoBootEntries: true,
		SecureBoot: install.SecureBootConfig{Keys: "keys"}, ESPSize: 40 << 20, MinRootSize: 200 << 20, Force: true}
	cfg.TPM.Disable = true
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(fx.Dir, "install.json")
	os.WriteFile(cfgPath, b, 0o644)
	img := filepath.Join(dir, "disk.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 600<<20)
	d, err := loop.Attach(img, loop.Config{PartScan: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Detach()
	efivars := t.TempDir()

	before := installtest.HashFile(t, d.Path)
	stdout, stderr, status := runInstallCLI("install", "--config", cfgPath, "--efivars", efivars, d.Path)
	if status != 3 || !strings.Contains(stderr, "needs consent") || !strings.Contains(stdout, "InitOS ESP A") {
		t.Errorf("install without --yes: exit %d, want 3 with the plan on stdout; stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	if installtest.HashFile(t, d.Path) != before {
		t.Errorf("install without --yes changed the disk")
	}

	stdout, stderr, status = runInstallCLI("install", "--config", cfgPath, "--efivars", efivars, "--yes", "--json", d.Path)
	if status != 1 || !strings.Contains(stderr, "install: step btrfs: "+d.Path) {
		t.Fatalf("install on the host: exit %d, want 1 naming the btrfs step (no device-mapper here); stderr:\n%s", status, stderr)
	}
	var sum install.Summary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	var done []string
	for _, s := range sum.Steps {
		done = append(done, s.Name+"="+s.Status)
	}
	if got := strings.Join(done, " "); !strings.HasPrefix(got, "preflight=done disks=done secureboot=off (forced) gpt=done esp=done luks=done btrfs=failed") {
		t.Errorf("--json steps = %s", got)
	}

	// efi boot add --disk reads partition 2 from the GPT just written.
	out := mustRun(t, "efi", "boot", "add", "--efivars", efivars, "--disk", d.Path, "--partition", "2", "--label", "InitOS B")
	n, _ := efiParseNum(strings.TrimSpace(out))
	e, err := efivar.ReadBootEntry(&efivar.Dir{Path: efivars}, n)
	if err != nil {
		t.Fatal(err)
	}
	want := "HD(2,GPT," + strings.ToLower(sum.Disks[0].ESPs[1].GUID) + ",0x14800,0x14000)/\\EFI\\Linux\\initos.efi"
	if e.FilePath.String() != want {
		t.Errorf("efi boot add --disk: device path %s, want %s", e.FilePath, want)
	}
	_, stderr, status = runInstallCLI("efi", "boot", "add", "--efivars", efivars, "--disk", d.Path, "--part-guid", sum.Disks[0].ESPs[1].GUID)
	if status != 2 || !strings.Contains(stderr, "leave out --part-guid") {
		t.Errorf("efi boot add --disk --part-guid: exit %d, want 2; stderr:\n%s", status, stderr)
	}
}

func TestUSBBuildCLI(t *testing.T) {
	dir := t.TempDir()
	fx := installtest.New(t, filepath.Join(dir, "fx"))
	installer := filepath.Join(dir, "installer.efi")
	fx.WriteUKICmdline(t, installer, fx.Owner.DB, "console=ttyS0 initos.mode=install")
	cfgPath := filepath.Join(fx.Dir, "install.json")
	os.WriteFile(cfgPath, []byte(`{"disks":["auto"],"yes":true,"uki":"initos.efi","modules":"`+filepath.Base(fx.Modules)+`","image":"oci:image","secure_boot":{"keys":"keys"}}`), 0o644)
	out := filepath.Join(dir, "usb.img")
	stdout, stderr, status := runInstallCLI("usb", "build", "--uki", installer, "--install-config", cfgPath, "--recovery-sqfs", fx.Modules, "-o", out, "--json")
	var img install.USBImage
	if status != 0 || json.Unmarshal([]byte(stdout), &img) != nil || len(img.Layout.Partitions) != 2 || img.Recovery == "" {
		t.Fatalf("usb build: exit %d, stdout:\n%s\nstderr:\n%s", status, stdout, stderr)
	}
	for _, tc := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"usb", "build", "--help"}, 0, "usage: initos usb build --uki FILE"},
		{[]string{"usb", "build", "-o", out}, 2, "--uki is required"},
		{[]string{"usb", "build", "--uki", installer}, 2, "-o is required"},
		{[]string{"usb", "build", "--uki", installer, "--recovery-image", "oci:x", "-o", out}, 2, "needs the squashfs writer"},
		{[]string{"usb", "build", "--uki", fx.UKI, "-o", out}, 1, "lacks initos.mode=install"},
	} {
		stdout, stderr, status := runInstallCLI(tc.args...)
		if status != tc.status || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("initos %q: exit %d, want %d with %q; output:\n%s%s", tc.args, status, tc.status, tc.want, stdout, stderr)
		}
	}
}

// TestInstallCLISignal: an install stopped by SIGTERM exits 143 and names
// the step it stopped in.
func TestInstallCLISignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(signalCause{syscall.SIGTERM})
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"install", "--uki", "u.efi", "--modules", "m.sqfs", "--image", "oci:x", "vda"}, &stdout, &stderr)
	if got := exitCode(withCause(ctx, err), &stderr); got != 143 || !strings.Contains(stderr.String(), "install: step preflight") {
		t.Errorf("install under SIGTERM: exit %d, want 143 naming the step; stderr:\n%s", got, stderr.String())
	}
}
