package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"initos/efivar"
	"initos/internal/testenv"
	"initos/internal/vmtest"
	"initos/loop"
)

// Tier 1: root and loop devices on the host. Device-mapper is missing
// here, so these runs stop after the esp step; the VM tests go further.

var errStop = errors.New("test stop")

// stopAfter returns an AfterStep hook that ends the install after step.
func stopAfter(step string) func(string) error {
	return func(s string) error {
		if s == step {
			return errStop
		}
		return nil
	}
}

// loopDisk makes a sparse disk file of size bytes and attaches it with
// partition scanning; it returns the loop device path and the file.
func loopDisk(t *testing.T, size int64) (string, string) {
	t.Helper()
	testenv.RequireRoot(t)
	if vmtest.InGuest() {
		t.Skip("not in VM: host loop-device test")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
	d, err := loop.Attach(img, loop.Config{PartScan: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Detach() })
	return d.Path, img
}

// testOptions are Options for a run on the host: an efivarfs-like
// directory, output into the test log.
func testOptions(t *testing.T, step string) (Options, *bytes.Buffer) {
	var out bytes.Buffer
	return Options{EFI: &efivar.Dir{Path: t.TempDir()}, Out: &out, AfterStep: stopAfter(step)}, &out
}

func TestLoopGPTAndESP(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	dev, img := loopDisk(t, testDiskSize)
	cfg := fxConfig(fx, dev)
	cfg.Force, cfg.TPM.Disable = true, true
	opts, out := testOptions(t, StepESP)
	sum, err := Run(context.Background(), cfg, opts)
	if !errors.Is(err, errStop) {
		t.Fatalf("Run() = %v, want the stop after esp\n%s", err, out)
	}
	d := sum.Disks[0]
	checkSfdisk(t, dev, d)
	checkSgdisk(t, dev)
	for _, esp := range d.ESPs {
		checkFAT(t, fmt.Sprintf("%sp%d", dev, esp.Number), espLabel(esp.Number), fx)
	}
	// A rerun finds both steps done and writes nothing.
	before := hashFile(t, img)
	sum2, err := Run(context.Background(), cfg, opts)
	if !errors.Is(err, errStop) {
		t.Fatalf("rerun: Run() = %v", err)
	}
	for _, s := range sum2.Steps[3:] {
		if s.Status != "already done" {
			t.Errorf("rerun: step %s = %q, want already done", s.Name, s.Status)
		}
	}
	if after := hashFile(t, img); after != before {
		t.Errorf("rerun changed the disk")
	}
	// A damaged file on ESP B is found and that ESP written again.
	damageESPFile(t, fmt.Sprintf("%sp2", dev), "/EFI/Linux/initos.efi")
	if _, err := Run(context.Background(), cfg, opts); !errors.Is(err, errStop) {
		t.Fatalf("repair: Run() = %v", err)
	}
	checkFAT(t, dev+"p2", "INITOS_B", fx)
}

// checkSfdisk compares sfdisk's dump with the planned partitions.
func checkSfdisk(t *testing.T, dev string, d SummaryDisk) {
	t.Helper()
	out := string(testenv.Run(t, testenv.Tool(t, "sfdisk"), "-d", dev))
	want := []string{"label: gpt", "label-id: " + d.DiskGUID,
		fmt.Sprintf("%sp1 : start=        2048, size=       81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=%s, name=\"InitOS ESP A\"", dev, d.ESPs[0].GUID),
		fmt.Sprintf("%sp2 : start=       83968, size=       81920, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=%s, name=\"InitOS ESP B\"", dev, d.ESPs[1].GUID),
		fmt.Sprintf("%sp3 : start=      165888, size=     1060864, type=CA7D7CCB-63ED-4C53-861C-1742536059CC, uuid=%s, name=\"InitOS LUKS\"", dev, d.LUKS.GUID),
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("sfdisk -d %s:\n%s\nmissing %q", dev, out, w)
		}
	}
}

// checkSgdisk runs sgdisk's verifier.
func checkSgdisk(t *testing.T, dev string) {
	t.Helper()
	out := string(testenv.Run(t, testenv.Tool(t, "sgdisk"), "-v", dev))
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v %s:\n%s", dev, out)
	}
}

// checkFAT checks an ESP with fsck.vfat, blkid and mtools.
func checkFAT(t *testing.T, part, label string, fx *fixture) {
	t.Helper()
	testenv.Run(t, testenv.Tool(t, "fsck.vfat"), "-n", part)
	blk := string(testenv.Run(t, testenv.Tool(t, "blkid"), "-p", "-o", "export", part))
	for _, w := range []string{"TYPE=vfat", "LABEL=" + label, "VERSION=FAT32", "PART_ENTRY_TYPE=c12a7328-f81f-11d2-ba4b-00a0c93ec93b"} {
		if !strings.Contains(blk, w+"\n") {
			t.Errorf("blkid -p %s:\n%s\nmissing %s", part, blk, w)
		}
	}
	ls := string(testenv.Run(t, testenv.Tool(t, "mdir"), "-i", part, "-b", "-/", "::/"))
	for _, w := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/Linux/initos.efi", "::/initos/modules-" + testRelease + ".sqfs"} {
		if !strings.Contains(ls, w) {
			t.Errorf("mdir -/ %s:\n%s\nmissing %s", part, ls, w)
		}
	}
	for esp, src := range map[string]string{"::/EFI/BOOT/BOOTX64.EFI": fx.UKI, "::/EFI/Linux/initos.efi": fx.UKI, "::/initos/modules-" + testRelease + ".sqfs": fx.Modules} {
		got := testenv.Run(t, testenv.Tool(t, "mtype"), "-i", part, esp)
		want, _ := os.ReadFile(src)
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("mtype -i %s %s: %d bytes differ from %s (%d bytes)", part, esp, len(got), src, len(want))
		}
	}
}

// damageESPFile flips a byte in the middle of a file on an ESP, found
// with mtools' cluster map (minfo would be overkill: read and rewrite).
func damageESPFile(t *testing.T, part, name string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "f")
	testenv.Run(t, testenv.Tool(t, "mcopy"), "-i", part, "::"+name, tmp)
	b, _ := os.ReadFile(tmp)
	b[len(b)/2] ^= 0xff
	os.WriteFile(tmp, b, 0o644)
	testenv.Run(t, testenv.Tool(t, "mcopy"), "-o", "-i", part, tmp, "::"+name)
}

// runOracle runs a command and returns its combined output and error.
func runOracle(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
