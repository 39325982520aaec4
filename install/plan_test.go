package install

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testDiskInfo(name string, size Size, c Content) *Disk {
	if c.Kind == Blank {
		c.What = "blank"
	}
	return &Disk{Name: name, Path: "/dev/" + name, ID: "virtio-" + name, Size: size, SectorSize: 512, PhysSector: 512, Model: "QEMU", Content: c}
}

func TestMakePlanRefusals(t *testing.T) {
	cfg := (&Config{ESPSize: 40 << 20, MinRootSize: 200 << 20}).withDefaults()
	for _, tc := range []struct {
		name string
		edit func(d *Disk)
		wipe bool
		want string
	}{
		{"in use", func(d *Disk) { d.InUse = "it is the disk we booted from (LoaderDevicePartUUID X is its partition 1)" }, true, "refusing disk /dev/vda (virtio-vda): it is in use: it is the disk we booted from"},
		{"read-only", func(d *Disk) { d.ReadOnly = true }, false, "it is read-only"},
		{"no medium", func(d *Disk) { d.Size = 0 }, false, "no medium"},
		{"foreign", func(d *Disk) { d.Content = Content{Kind: Foreign, What: "ext2/3/4 filesystem"} }, false, "it holds ext2/3/4 filesystem; pass --wipe to erase it"},
		{"too small", func(d *Disk) { d.Size = 100 << 20 }, false, "disk is too small: 100.0 MiB"},
	} {
		d := testDiskInfo("vda", 1<<30, Content{Kind: Blank})
		tc.edit(d)
		c := cfg
		c.Wipe = tc.wipe
		_, err := makePlan([]*Disk{d}, &c, false, randReader)
		var ref *RefusedError
		if !errors.As(err, &ref) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: makePlan() error = %v, want a refusal %q", tc.name, err, tc.want)
		}
	}
}

func TestMakePlanAuto(t *testing.T) {
	cfg := (&Config{ESPSize: 40 << 20, MinRootSize: 200 << 20}).withDefaults()
	usb := testDiskInfo("sda", 8<<30, Content{Kind: Foreign, What: "GPT partition table with 2 partitions"})
	usb.Removable = true
	small := testDiskInfo("vdc", 64<<20, Content{Kind: Blank})
	p, err := makePlan([]*Disk{usb, testDiskInfo("vda", 1<<30, Content{Kind: Blank}), small, testDiskInfo("vdb", 1<<30, Content{Kind: Blank})}, &cfg, true, randReader)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.IDs(), ","); got != "virtio-vda,virtio-vdb" {
		t.Errorf("makePlan(auto) disks = %s, want virtio-vda,virtio-vdb", got)
	}
	if len(p.Skipped) != 2 || !strings.Contains(p.Skipped[0], "removable") || !strings.Contains(p.Skipped[1], "too small") {
		t.Errorf("makePlan(auto) skipped = %q", p.Skipped)
	}
	var buf bytes.Buffer
	p.Write(&buf)
	for _, want := range []string{"disk 1: /dev/vda  virtio-vda  1.0 GiB  \"QEMU\"  blank -> install", "1  InitOS ESP A", "not used: /dev/sda"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Plan.Write() = %q, missing %q", buf.String(), want)
		}
	}
	if _, err := makePlan([]*Disk{usb}, &cfg, true, randReader); err == nil || !strings.Contains(err.Error(), "no disk to install to") {
		t.Errorf("makePlan(auto, only the USB stick) error = %v", err)
	}
}

func TestMakePlanResume(t *testing.T) {
	cfg := (&Config{ESPSize: 40 << 20, MinRootSize: 200 << 20}).withDefaults()
	want, _ := planLayout(1<<30, 512, cfg.ESPSize, cfg.MinRootSize, false)
	(&Plan{Disks: []*PlannedDisk{{Disk: &Disk{}, Layout: want}}}).assignGUIDs(randReader)
	complete := func(name, id string, disks ...string) *Disk {
		return testDiskInfo(name, 1<<30, Content{Kind: Complete, Layout: want, Token: &Token{State: StateComplete, InstallID: id, Disks: disks}})
	}
	// An interrupted install keeps its GUIDs (its ESPs may be done).
	partial := testDiskInfo("vda", 1<<30, Content{Kind: Partial, Layout: want})
	p, err := makePlan([]*Disk{partial}, &cfg, false, randReader)
	if err != nil || p.Disks[0].Action != ActionContinue || p.Disks[0].Layout.DiskGUID != want.DiskGUID {
		t.Errorf("makePlan(partial) = %+v, %v; want continue with disk GUID %s", p.Disks[0], err, want.DiskGUID)
	}
	// A complete install on the same disks is only checked.
	p, err = makePlan([]*Disk{complete("vda", "i1", "virtio-vda", "virtio-vdb"), complete("vdb", "i1", "virtio-vda", "virtio-vdb")}, &cfg, false, randReader)
	if err != nil || !p.Complete || p.InstallID != "i1" {
		t.Errorf("makePlan(complete) = %+v, %v; want complete i1", p, err)
	}
	for _, tc := range []struct {
		name  string
		disks []*Disk
		want  string
	}{
		{"complete + blank", []*Disk{complete("vda", "i1", "virtio-vda"), testDiskInfo("vdb", 1<<30, Content{Kind: Blank})}, "holds the complete InitOS install i1 but this disk does not"},
		{"two installs", []*Disk{complete("vda", "i1", "virtio-vda"), complete("vdb", "i2", "virtio-vdb")}, "it holds InitOS install i2"},
		{"other disks", []*Disk{complete("vda", "i1", "virtio-vda", "virtio-vdx")}, "is on disks virtio-vda, virtio-vdx, not virtio-vda"},
	} {
		_, err := makePlan(tc.disks, &cfg, false, randReader)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("makePlan(%s) error = %v, want %q", tc.name, err, tc.want)
		}
	}
	// --wipe reinstalls a complete disk.
	c := cfg
	c.Wipe = true
	p, err = makePlan([]*Disk{complete("vda", "i1", "virtio-vda")}, &c, false, randReader)
	if err != nil || p.Complete || p.Disks[0].Action != ActionWipe {
		t.Errorf("makePlan(complete, wipe) = %+v, %v; want wipe", p, err)
	}
}
