package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/build"
	bt "initos/internal/buildtest"
)

// buildCLIInputs writes a synthetic host image, keys and a fake
// initos-init, and returns the arguments common to the tests.
func buildCLIInputs(t *testing.T) (args []string, out string) {
	dir := t.TempDir()
	src := bt.WriteImage(t, bt.HostLayers(t)...)
	keys := filepath.Join(dir, "keys")
	bt.WriteKeys(t, keys)
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, []byte("fake initos-init"), 0o755); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "out")
	return []string{"build", "--from-image", src, "--keys", keys, "--init", init, "--stub", bt.StubAMD64, "--progress=false", "-o", out}, out
}

func TestBuildCLIJSON(t *testing.T) {
	args, out := buildCLIInputs(t)
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("console=ttyS0 quiet\n"), 0o644)
	stdout := mustRun(t, append(args, "--json", "--cmdline", "@"+cmdline, "--security-version", "7", "--build-id", "b1",
		"--kernel", bt.Rel9, "--module", "a", "--level", "5")...)
	var m build.Manifest
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("initos build --json: %v\n%s", err, stdout)
	}
	got := []any{m.UKI.Cmdline, m.Initrd.SecurityVersion, m.Initrd.BuildID, m.Kernel.Release, m.Initrd.EarlyModules, m.ModulesImage.Level, m.UKI.PCRPolicy, m.UKI.Signed}
	want := []any{"console=ttyS0 quiet", uint64(7), "b1", bt.Rel9, []string{"a"}, 5, true, true}
	for i := range got {
		if !jsonEqual(got[i], want[i]) {
			t.Errorf("initos build --json: field %d = %v, want %v", i, got[i], want[i])
		}
	}
	disk, err := build.ReadManifest(filepath.Join(out, build.ManifestFile))
	if err != nil || disk.ModulesImage.RootHash != m.ModulesImage.RootHash {
		t.Errorf("manifest.json = %+v, %v; want what --json printed", disk, err)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestBuildCLIText(t *testing.T) {
	args, out := buildCLIInputs(t)
	stdout := mustRun(t, append(args, "--pcr-key", "none")...)
	for _, want := range []string{"Kernel:          \t" + bt.Rel10 + " (/boot/vmlinuz-" + bt.Rel10 + ")", "Skipped kernels: \t" + bt.Rel9,
		"signed: true, PCR policy: false", "Root hash:       \t"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("initos build: output lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "modules-"+bt.Rel10+".sqfs")); err != nil {
		t.Error(err)
	}
}

func TestBuildCLIErrors(t *testing.T) {
	args, out := buildCLIInputs(t)
	noKeys := t.TempDir()
	with := func(extra ...string) []string { return append(append([]string{}, args...), extra...) }
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"build", "-o", out}, 2, "--from-image, --keys and -o are required"},
		{with("extra"), 2, "wrong number of arguments"},
		{with("--level", "0"), 2, "--level 0: want 1..22"},
		{with("--nosuch"), 2, "flag provided but not defined"},
		{with("--keys", noKeys), 1, "db.key: no such file or directory (a directory made by `initos keys create`)"},
		{with("--kernel", "9.9"), 1, "no modules for kernel 9.9 in the image"},
		{with("--cmdline", "@/nonexistent"), 1, "--cmdline: open /nonexistent"},
	} {
		err := mustFail(t, c.args...)
		if code := exitCode(err, io.Discard); err == nil || code != c.status || !strings.Contains(err.Error(), c.want) {
			t.Errorf("initos %q: exit %d, %v; want exit %d and %q", c.args[1:], code, err, c.status, c.want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("failed builds left %v", ents)
	}
}

// TestBuildCLIInstaller: one `initos build --installer` makes the
// installer UKI that `initos usb build` takes with the same recovery
// image (the recovery squashfs from `initos sqfs build --verity`).
func TestBuildCLIInstaller(t *testing.T) {
	args, out := buildCLIInputs(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "sh"), []byte("#!recovery shell\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "recovery.sqfs")
	mustRun(t, "sqfs", "build", "--verity", root, rec)
	stdout := mustRun(t, append(args, "--installer", "--recovery-sqfs", rec)...)
	m, err := build.ReadManifest(filepath.Join(out, build.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if m.Installer == nil || !strings.Contains(stdout, "Installer UKI:   \tinstaller.efi (recovery root hash "+m.Installer.RecoveryRootHash) {
		t.Fatalf("initos build --installer: manifest installer %+v, output:\n%s", m.Installer, stdout)
	}
	usb := filepath.Join(dir, "usb.img")
	mustRun(t, "usb", "build", "--uki", filepath.Join(out, build.InstallerUKIFile), "--recovery-sqfs", rec, "-o", usb)
	// Another recovery image: usb build refuses the installer UKI.
	os.WriteFile(filepath.Join(root, "bin", "sh"), []byte("#!another shell\n"), 0o755)
	other := filepath.Join(dir, "other.sqfs")
	mustRun(t, "sqfs", "build", "--verity", root, other)
	err = mustFail(t, "usb", "build", "--uki", filepath.Join(out, build.InstallerUKIFile), "--recovery-sqfs", other, "-o", usb+".2")
	if want := "does not verify against the installer UKI's initos.recovery=" + m.Installer.RecoveryRootHash; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("initos usb build with another recovery image = %v, want %q", err, want)
	}
}

func TestBuildCLIInstallerErrors(t *testing.T) {
	args, out := buildCLIInputs(t)
	notVerity := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(notVerity, []byte(strings.Repeat("not a squashfs ", 20)), 0o644)
	with := func(extra ...string) []string { return append(append([]string{}, args...), extra...) }
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{with("--installer"), 2, "--installer and --recovery-sqfs go together"},
		{with("--recovery-sqfs", notVerity), 2, "--installer and --recovery-sqfs go together"},
		{with("--installer", "--recovery-sqfs", notVerity), 1, "build: --recovery-sqfs: recovery image " + notVerity + ": not a squashfs image"},
		{with("--installer", "--recovery-sqfs", "/nonexistent"), 1, "build: --recovery-sqfs: recovery image: open /nonexistent"},
	} {
		err := mustFail(t, c.args...)
		if code := exitCode(err, io.Discard); err == nil || code != c.status || !strings.Contains(err.Error(), c.want) {
			t.Errorf("initos %q: exit %d, %v; want exit %d and %q", c.args[1:], code, err, c.status, c.want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("failed builds left %v", ents)
	}
}
