package install

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"initos/efivar"
	"initos/internal/testenv"
)

// TestLoopSafety: every refusal comes before the first write, so the
// disk hashes the same before and after, and each says what is wrong.
func TestLoopSafety(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	for _, tc := range []struct {
		name  string
		size  int64
		setup func(t *testing.T, dev string, cfg *Config, opts *Options)
		step  string
		want  string
	}{
		{"partitions without --wipe", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			foreignGPT(t, dev)
		}, StepDisks, `it holds GPT partition table with 1 partitions (1 "data"); pass --wipe to erase it`},
		{"filesystem without --wipe", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			testenv.Run(t, testenv.Tool(t, "mkfs.btrfs"), "-q", dev)
		}, StepDisks, "it holds btrfs filesystem; pass --wipe"},
		{"mounted, even with --wipe", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			testenv.Run(t, testenv.Tool(t, "mkfs.btrfs"), "-q", dev)
			mnt := t.TempDir()
			if err := unix.Mount(dev, mnt, "btrfs", unix.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(mnt, 0) })
			cfg.Wipe = true
		}, StepDisks, "is mounted on /tmp/"},
		{"the disk we booted from, even with --wipe", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			guid := foreignGPT(t, dev)
			setLoaderPartUUID(t, opts.EFI, guid)
			cfg.Wipe = true
		}, StepDisks, "it is the disk we booted from (LoaderDevicePartUUID"},
		{"too small", 200 << 20, nil, StepDisks, "disk is too small: 200.0 MiB, the layout needs at least 282.0 MiB"},
		{"missing image", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			cfg.Image = "oci:" + filepath.Join(t.TempDir(), "nothing")
		}, StepPreflight, "root image oci:/tmp/"},
		{"UKI signed by another key", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) {
			other, _ := efivar.GenerateOwnerKeys(efivar.MustParseGUID("99999999-2222-3333-4444-555555555555"), "other", fixedTime)
			cfg.UKI = filepath.Join(t.TempDir(), "other.efi")
			fx.WriteUKI(t, cfg.UKI, other.DB)
		}, StepPreflight, "signature"},
		{"no consent", testDiskSize, func(t *testing.T, dev string, cfg *Config, opts *Options) { cfg.Yes = false }, StepDisks, ErrNoConsent.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, _ := loopDisk(t, tc.size)
			cfg := fxConfig(fx, dev)
			cfg.Force, cfg.TPM.Disable = true, true
			opts, out := testOptions(t, "")
			if tc.setup != nil {
				tc.setup(t, dev, cfg, &opts)
			}
			before := hashFile(t, dev)
			_, err := Run(context.Background(), cfg, opts)
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.step || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run() = %v, want step %s failing with %q\n%s", err, tc.step, tc.want, out)
			}
			if after := hashFile(t, dev); after != before {
				t.Errorf("the disk changed")
			}
		})
	}
}

// foreignGPT writes a GPT with one Linux partition and returns its GUID.
func foreignGPT(t *testing.T, dev string) string {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &Layout{SectorSize: 512, DiskGUID: "0B7F9A0C-1111-4222-8333-444455556666", Partitions: []Partition{
		{Number: 1, Name: "data", Type: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", GUID: "5F2D7E4A-0000-4000-8000-000000000001", Start: 2048, Sectors: 20480}}}
	if err := l.toGPT(512).Write(f, testDiskSize); err != nil {
		t.Fatal(err)
	}
	return l.Partitions[0].GUID
}

// setLoaderPartUUID sets systemd-stub's LoaderDevicePartUUID.
func setLoaderPartUUID(t *testing.T, s efivar.Store, guid string) {
	t.Helper()
	var b bytes.Buffer
	for _, c := range utf16.Encode([]rune(strings.ToLower(guid) + "\x00")) {
		b.WriteByte(byte(c))
		b.WriteByte(byte(c >> 8))
	}
	if err := s.Set("LoaderDevicePartUUID", loaderVendor, efivar.BootserviceAccess|efivar.RuntimeAccess, b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// TestLoopSafetyTwoDisks: a refusal of one disk (the second here) writes
// nothing to any disk, also not to the blank one named with it.
func TestLoopSafetyTwoDisks(t *testing.T) {
	fx := newFixture(t, t.TempDir())
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dev string, cfg *Config, opts *Options)
		want  string
	}{
		{"partitions without --wipe", func(t *testing.T, dev string, cfg *Config, opts *Options) {
			foreignGPT(t, dev)
		}, `it holds GPT partition table with 1 partitions (1 "data"); pass --wipe to erase it`},
		{"the stick we booted from, even with --wipe", func(t *testing.T, dev string, cfg *Config, opts *Options) {
			setLoaderPartUUID(t, opts.EFI, foreignGPT(t, dev))
			cfg.Wipe = true
		}, "it is the disk we booted from (LoaderDevicePartUUID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blank, _ := loopDisk(t, testDiskSize)
			other, _ := loopDisk(t, testDiskSize)
			cfg := fxConfig(fx, blank, other)
			cfg.Force, cfg.TPM.Disable = true, true
			opts, out := testOptions(t, "")
			tc.setup(t, other, cfg, &opts)
			before := []string{hashFile(t, blank), hashFile(t, other)}
			_, err := Run(context.Background(), cfg, opts)
			var se *StepError
			if !errors.As(err, &se) || se.Step != StepDisks || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run() = %v, want step %s refusing %s with %q\n%s", err, StepDisks, other, tc.want, out)
			}
			for i, dev := range []string{blank, other} {
				if after := hashFile(t, dev); after != before[i] {
					t.Errorf("disk %s changed", dev)
				}
			}
		})
	}
}
