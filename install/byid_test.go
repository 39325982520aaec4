package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem builds a sysfs and /dev tree with a few kinds of disks.
func fakeSystem(t *testing.T) System {
	t.Helper()
	root := t.TempDir()
	s := System{Sys: filepath.Join(root, "sys"), Dev: filepath.Join(root, "dev"), Proc: filepath.Join(root, "proc")}
	vpd := string([]byte{0, 0x80, 0, 12}) + "  QM00001   "
	files := map[string][]byte{
		"sys/block/vda/serial":                                       []byte("disk one\n"),
		"sys/block/vda/size":                                         []byte("8388608\n"),
		"sys/block/vda/queue/logical_block_size":                     []byte("512\n"),
		"sys/block/vda/vda1/partition":                               []byte("1\n"),
		"sys/block/nvme0n1/device/model":                             []byte("Samsung SSD 970 EVO Plus 1TB          \n"),
		"sys/block/nvme0n1/device/serial":                            []byte("S4EWNX0R123456   \n"),
		"sys/block/sda/device/vendor":                                []byte("ATA     \n"),
		"sys/block/sda/device/model":                                 []byte("QEMU HARDDISK   \n"),
		"sys/block/sda/device/vpd_pg80":                              []byte(vpd),
		"sys/block/sdb/device/vendor":                                []byte("QEMU    \n"),
		"sys/block/sdb/device/wwid":                                  []byte("naa.5000C500A1B2C3D4\n"),
		"sys/block/mmcblk0/device/name":                              []byte("SD32G\n"),
		"sys/block/mmcblk0/device/serial":                            []byte("0x1234abcd\n"),
		"sys/devices/pci0000:00/0000:00:05.0/virtio2/block/vdb/size": []byte("100\n"),
		"dev/vda": nil, "dev/vda1": nil, "dev/sdc": nil, "dev/nvme0n1": nil,
	}
	writeFiles(t, root, files)
	links := map[string]string{
		"sys/class/block/vda1":                  "../../block/vda/vda1",
		"sys/block/vdb":                         "../devices/pci0000:00/0000:00:05.0/virtio2/block/vdb",
		"dev/disk/by-id/wwn-0x5000c500aaaa":     "../../sdc",
		"dev/disk/by-id/ata-WDC_WD40_ABC":       "../../sdc",
		"dev/disk/by-id/ata-WDC_WD40_ABC-part1": "../../sdc1",
		"dev/disk/by-id/nvme-eui.0025385":       "../../nvme0n1",
		"dev/disk/by-id/nvme-Samsung_X_S4":      "../../nvme0n1",
	}
	for l, target := range links {
		p := filepath.Join(root, l)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(s.Sys, "block", "sdc"), 0o755)
	return s
}

func TestStableID(t *testing.T) {
	s := fakeSystem(t)
	for _, tc := range []struct{ name, want string }{
		{"vda", "virtio-disk_one"},
		{"nvme0n1", "nvme-Samsung_X_S4"}, // udev's link wins, eui links are skipped
		{"sda", "ata-QEMU_HARDDISK_QM00001"},
		{"sdb", "wwn-0x5000c500a1b2c3d4"},
		{"sdc", "ata-WDC_WD40_ABC"}, // ata- preferred over wwn-, -part links ignored
		{"mmcblk0", "mmc-SD32G_0x1234abcd"},
		{"vdb", "pci-0000:00:05.0"},
		{"loop3", "loop3"},
	} {
		if got := s.StableID(tc.name); got != tc.want {
			t.Errorf("StableID(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestResolveDisk(t *testing.T) {
	s := fakeSystem(t)
	for _, tc := range []struct{ arg, want, err string }{
		{"virtio-disk_one", "vda", ""},
		{s.Dev + "/disk/by-id/virtio-disk_one", "vda", ""}, // no udev link: computed id
		{s.Dev + "/disk/by-id/ata-WDC_WD40_ABC", "sdc", ""},
		{s.Dev + "/vda", "vda", ""},
		{"vda", "vda", ""},
		{s.Dev + "/vda1", "", "vda1 is a partition; name the whole disk (vda)"},
		{s.Dev + "/nope", "", "no such device"},
		{"virtio-other", "", "no disk has this name or stable id"},
	} {
		got, err := s.resolveDisk(tc.arg)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveDisk(%s) error = %v, want %q", tc.arg, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveDisk(%s) = %q, %v, want %q", tc.arg, got, err, tc.want)
		}
	}
}

func TestDescribeDisk(t *testing.T) {
	s := fakeSystem(t)
	d, err := s.describeDisk("vda")
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 4<<30 || d.SectorSize != 512 || d.Serial != "disk one" || d.ID != "virtio-disk_one" || d.Path != filepath.Join(s.Dev, "vda") {
		t.Errorf("describeDisk(vda) = %+v", d)
	}
	if got := s.partitionName("vda", 1); got != "vda1" {
		t.Errorf("partitionName(vda, 1) = %q, want vda1", got)
	}
	if got := s.diskOf("vda1"); got != "vda" {
		t.Errorf("diskOf(vda1) = %q, want vda", got)
	}
}
