package install

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// System is where the installer looks at the machine. The zero value is
// the running system (/sys, /dev, /proc); tests point it at fake trees.
type System struct {
	Sys, Dev, Proc string
}

func (s System) withDefaults() System {
	if s.Sys == "" {
		s.Sys = "/sys"
	}
	if s.Dev == "" {
		s.Dev = "/dev"
	}
	if s.Proc == "" {
		s.Proc = "/proc"
	}
	return s
}

// Disk is a whole block device.
type Disk struct {
	Name       string `json:"name"` // kernel name: "vda", "nvme0n1", "loop3"
	Path       string `json:"path"` // "/dev/vda"
	ID         string `json:"id"`   // stable id (see StableID)
	Size       Size   `json:"size"`
	Model      string `json:"model,omitempty"`
	Serial     string `json:"serial,omitempty"`
	Removable  bool   `json:"removable,omitempty"`
	ReadOnly   bool   `json:"read_only,omitempty"`
	SectorSize int    `json:"sector_size"`          // logical
	PhysSector int    `json:"physical_sector_size"` // physical
	// InUse says why the disk must not be written ("" when free): the
	// disk we booted from, a mounted partition, swap, a device-mapper or
	// loop user.
	InUse   string  `json:"in_use,omitempty"`
	Content Content `json:"content"`
}

// skipDisk reports kernel names that are never install targets when
// disks are picked automatically (virtual and optical devices).
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd", "mtdblock"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// attr reads a sysfs attribute, trimmed ("" when missing).
func attr(path ...string) string {
	b, err := os.ReadFile(filepath.Join(path...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func attrInt(path ...string) int64 {
	n, _ := strconv.ParseInt(attr(path...), 10, 64)
	return n
}

// describeDisk reads a disk's facts from sysfs (not its content).
func (s System) describeDisk(name string) (*Disk, error) {
	dir := filepath.Join(s.Sys, "block", name)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("disk %s: not a whole disk in %s", name, filepath.Join(s.Sys, "block"))
	}
	d := &Disk{
		Name:       name,
		Path:       filepath.Join(s.Dev, name),
		Size:       Size(attrInt(dir, "size") * 512),
		Model:      attr(dir, "device", "model"),
		Serial:     firstNonEmpty(attr(dir, "serial"), attr(dir, "device", "serial")),
		Removable:  attr(dir, "removable") == "1",
		ReadOnly:   attr(dir, "ro") == "1",
		SectorSize: int(attrInt(dir, "queue", "logical_block_size")),
		PhysSector: int(attrInt(dir, "queue", "physical_block_size")),
	}
	if d.SectorSize == 0 {
		d.SectorSize = 512
	}
	if d.PhysSector == 0 {
		d.PhysSector = d.SectorSize
	}
	if v := attr(dir, "device", "vendor"); v != "" && d.Model != "" {
		d.Model = v + " " + d.Model
	}
	d.ID = s.StableID(name)
	return d, nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// wholeDisks lists /sys/block, skipping virtual devices.
func (s System) wholeDisks() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Sys, "block"))
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !skipDisk(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// partitionName returns the kernel name of partition n of disk ("" when
// the kernel has not made it): the child of /sys/block/DISK whose
// "partition" attribute is n.
func (s System) partitionName(disk string, n int) string {
	dir := filepath.Join(s.Sys, "block", disk)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), disk) && attrInt(dir, e.Name(), "partition") == int64(n) && attr(dir, e.Name(), "partition") != "" {
			return e.Name()
		}
	}
	return ""
}

// diskOf returns the whole disk of a block device name ("vda2" -> "vda",
// "vda" -> "vda").
func (s System) diskOf(name string) string {
	if _, err := os.Stat(filepath.Join(s.Sys, "class", "block", name, "partition")); err != nil {
		return name
	}
	p, err := filepath.EvalSymlinks(filepath.Join(s.Sys, "class", "block", name))
	if err != nil {
		return name
	}
	return filepath.Base(filepath.Dir(p))
}
