package build

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"initos/authenticode"
	"initos/bootconfig"
	"initos/initrd"
	"initos/install"
	"initos/pecoff"
)

const testRecoveryHash = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestBuildInstaller(t *testing.T) {
	src := writeImage(t, hostLayers(t)...)
	opts := options(t, src)
	opts.Installer = &Installer{RecoveryRootHash: strings.ToUpper(testRecoveryHash)}
	m, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := readOut(t, opts.OutDir)
	checkUKI(t, out[UKIFile], m) // the installed UKI is unchanged
	img, err := pecoff.Parse(out[InstallerUKIFile])
	if err != nil {
		t.Fatalf("installer UKI: %v", err)
	}
	wantCmdline := "console=ttyS0 initos.mode=install initos.recovery=" + testRecoveryHash
	if got := string(img.Section(".cmdline")); got != wantCmdline {
		t.Errorf("installer UKI .cmdline = %q, want %q", got, wantCmdline)
	}
	if string(img.Section(".linux")) != string(fakeKernel(t)) || len(img.Section(".pcrsig")) == 0 {
		t.Errorf("installer UKI: want the same kernel and a signed PCR 11 policy")
	}
	if _, err := authenticode.Verify(img, []*x509Cert{keys(t).DBCert}); err != nil {
		t.Errorf("authenticode.Verify(installer UKI) = %v, want nil", err)
	}
	cfg, err := initrd.ReadConfig(img.Section(".initrd"))
	if err != nil {
		t.Fatal(err)
	}
	wantFile := "initos/payload/modules-" + rel10 + ".sqfs"
	if cfg.Mode != bootconfig.ModeInstall || cfg.ModulesImage.File != wantFile || cfg.ModulesImage.RootHash != m.ModulesImage.RootHash {
		t.Errorf("installer initrd config: mode %q, modules image %+v; want install, %s with root hash %s", cfg.Mode, cfg.ModulesImage, wantFile, m.ModulesImage.RootHash)
	}
	want := &InstallerInfo{File: InstallerUKIFile, Cmdline: wantCmdline, ModulesImagePath: wantFile, RecoveryRootHash: testRecoveryHash,
		EarlyModules: cfg.EarlyModules, InitrdSHA256: sum(img.Section(".initrd"))}
	if !reflect.DeepEqual(m.Installer, want) {
		t.Errorf("manifest installer = %+v, want %+v", m.Installer, want)
	}
	if len(m.Files) != 3 || m.Files[2] != fileInfo(InstallerUKIFile, out[InstallerUKIFile]) {
		t.Errorf("manifest files = %+v, want the installer UKI last", m.Files)
	}
	if b, err := ReadManifest(filepath.Join(opts.OutDir, ManifestFile)); err != nil || !reflect.DeepEqual(b, m) {
		t.Errorf("ReadManifest() = %+v, %v, want %+v", b, err, m)
	}
}

// TestInstallerContract: the command line and the payload path are what
// `initos usb build` checks and copies to.
func TestInstallerContract(t *testing.T) {
	for _, c := range [][2]string{{installModeArg, install.InstallModeArg}, {recoveryArg, install.RecoveryArg}, {"/" + InstallerPayloadDir, install.USBPayloadDir}} {
		if c[0] != c[1] {
			t.Errorf("build has %q, install %q", c[0], c[1])
		}
	}
}

func TestBuildInstallerErrors(t *testing.T) {
	src := writeImage(t, hostLayers(t)...)
	for _, hash := range []string{"", "xyz", "0011"} {
		opts := options(t, src)
		opts.Installer = &Installer{RecoveryRootHash: hash}
		_, err := Build(context.Background(), opts)
		if want := "build: installer: recovery root hash " + `"` + hash + `"`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build(installer hash %q) = %v, want %q", hash, err, want)
		}
		if _, err := os.Stat(opts.OutDir); !os.IsNotExist(err) {
			t.Errorf("Build(installer hash %q) made %s", hash, opts.OutDir)
		}
	}
}
