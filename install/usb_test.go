package install

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"initos/internal/testenv"
)

func TestBuildUSB(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dir := t.TempDir()
	fx := newFixture(t, filepath.Join(dir, "fx"))
	installer := filepath.Join(dir, "installer.efi")
	fx.WriteUKICmdline(t, installer, fx.Owner.DB, "console=ttyS0 "+InstallModeArg)
	cfg := fxConfig(fx, "auto")
	cfg.Resolve(dir)
	o := USBOptions{UKI: installer, Config: cfg, Recovery: fx.Modules}
	out := filepath.Join(dir, "usb.img")
	img, err := BuildUSB(out, o)
	if err != nil {
		t.Fatal(err)
	}
	// Reproducible: the same inputs give the same bytes.
	again := filepath.Join(dir, "usb2.img")
	if _, err := BuildUSB(again, o); err != nil {
		t.Fatal(err)
	}
	if hashFile(t, out) != hashFile(t, again) {
		t.Errorf("two builds with the same inputs differ")
	}
	sfdisk := string(testenv.Run(t, testenv.Tool(t, "sfdisk"), "-d", out))
	for _, w := range []string{`name="InitOS installer"`, `name="InitOS recovery"`, "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "start=        2048"} {
		if !strings.Contains(sfdisk, w) {
			t.Errorf("sfdisk -d usb.img:\n%s\nmissing %s", sfdisk, w)
		}
	}
	espOff, espSize := img.Layout.Offset(img.Layout.Part(1))
	esp := extract(t, out, espOff, espSize)
	testenv.Run(t, testenv.Tool(t, "fsck.vfat"), "-n", esp)
	ls := string(testenv.Run(t, testenv.Tool(t, "mdir"), "-i", esp, "-b", "-/", "::/"))
	for _, w := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/initos/install.json", "::/initos/payload/initos.efi",
		"::/initos/payload/modules-" + testRelease + ".sqfs", "::/initos/payload/keys/PK.auth", "::/initos/payload/image/index.json"} {
		if !strings.Contains(ls, w) {
			t.Errorf("mdir -/ the USB ESP:\n%s\nmissing %s", ls, w)
		}
	}
	var got Config
	if err := json.Unmarshal(testenv.Run(t, testenv.Tool(t, "mtype"), "-i", esp, "::/initos/install.json"), &got); err != nil {
		t.Fatal(err)
	}
	if got.UKI != "payload/initos.efi" || got.Image != "oci:payload/image" || got.SecureBoot.Keys != "payload/keys" {
		t.Errorf("install.json on the USB = %+v, want paths into payload/", got)
	}
	recOff, _ := img.Layout.Offset(img.Layout.Part(2))
	want, _ := os.ReadFile(fx.Modules)
	if b := readAt(t, out, recOff, len(want)); !bytes.Equal(b, want) {
		t.Errorf("partition 2 is not the recovery image")
	}
}

func TestBuildUSBErrors(t *testing.T) {
	dir := t.TempDir()
	fx := newFixture(t, filepath.Join(dir, "fx"))
	for _, tc := range []struct {
		name string
		o    USBOptions
		want string
	}{
		{"not an installer", USBOptions{UKI: fx.UKI}, "lacks initos.mode=install"},
		{"no UKI", USBOptions{UKI: filepath.Join(dir, "none.efi")}, "no such file"},
		{"missing payload", USBOptions{UKI: fx.UKI, Config: &Config{UKI: filepath.Join(dir, "gone.efi")}}, "lacks initos.mode=install"},
	} {
		out := filepath.Join(dir, "usb.img")
		if _, err := BuildUSB(out, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: BuildUSB() = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a failed build left %s", tc.name, out)
		}
	}
}

func extract(t *testing.T, img string, off, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "part.img")
	if err := os.WriteFile(p, readAt(t, img, off, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
