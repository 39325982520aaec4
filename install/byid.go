package install

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// StableID returns a name for the disk that survives reboots and device
// renumbering, to record and to select disks by:
//
//  1. its /dev/disk/by-id name, when udev made one (preferring ata-,
//     nvme-, scsi-, usb-, virtio-, mmc- over wwn- and eui names);
//  2. else the same name computed from sysfs the way udev's
//     60-persistent-storage rules do: virtio-SERIAL, nvme-MODEL_SERIAL,
//     ata-MODEL_SERIAL, wwn-0xNAA, mmc-NAME_SERIAL;
//  3. else its by-path name from the PCI address (pci-0000:00:04.0);
//  4. else the kernel name.
func (s System) StableID(name string) string {
	for _, f := range []func(string) string{s.udevID, s.sysfsID, s.pathID} {
		if id := f(name); id != "" {
			return id
		}
	}
	return name
}

// byIDPreference orders udev's by-id prefixes, best first.
var byIDPreference = []string{"ata-", "nvme-", "scsi-", "usb-", "virtio-", "mmc-", "wwn-", ""}

// udevID returns the best /dev/disk/by-id link to name.
func (s System) udevID(name string) string {
	dir := filepath.Join(s.Dev, "disk", "by-id")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	best, rank := "", len(byIDPreference)
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || filepath.Base(target) != name || strings.Contains(e.Name(), "-part") || strings.HasPrefix(e.Name(), "nvme-eui.") {
			continue
		}
		for i, p := range byIDPreference {
			if strings.HasPrefix(e.Name(), p) && (i < rank || i == rank && e.Name() < best) {
				best, rank = e.Name(), i
				break
			}
		}
	}
	return best
}

// sysfsID computes udev's by-id name from sysfs attributes.
func (s System) sysfsID(name string) string {
	dir := filepath.Join(s.Sys, "block", name)
	dev := filepath.Join(dir, "device")
	switch {
	case strings.HasPrefix(name, "vd"):
		return prefixed("virtio-", idChars(attr(dir, "serial")))
	case strings.HasPrefix(name, "nvme"):
		return joinID("nvme-", attr(dev, "model"), attr(dev, "serial"))
	case strings.HasPrefix(name, "mmcblk"):
		return joinID("mmc-", attr(dev, "name"), attr(dev, "serial"))
	case strings.HasPrefix(name, "sd"):
		if attr(dev, "vendor") == "ATA" {
			if id := joinID("ata-", attr(dev, "model"), vpdSerial(dev)); id != "" {
				return id
			}
		}
		if w, ok := strings.CutPrefix(attr(dev, "wwid"), "naa."); ok {
			return "wwn-0x" + strings.ToLower(idChars(w))
		}
	}
	return ""
}

// vpdSerial reads the unit serial number VPD page (0x80) of a SCSI/ATA
// device: a 4-byte header, then the serial.
func vpdSerial(dev string) string {
	b, err := os.ReadFile(filepath.Join(dev, "vpd_pg80"))
	if err != nil || len(b) <= 4 {
		return ""
	}
	return strings.TrimSpace(strings.Trim(string(b[4:]), "\x00"))
}

func joinID(prefix, model, serial string) string {
	m, sn := idChars(model), idChars(serial)
	if m == "" || sn == "" {
		return ""
	}
	return prefix + m + "_" + sn
}

func prefixed(prefix, v string) string {
	if v == "" {
		return ""
	}
	return prefix + v
}

var idUnsafe = regexp.MustCompile(`[^0-9A-Za-z#+\-.:=@_]`)

// idChars does what udev does to a model or serial before it becomes part
// of a by-id name: trim, runs of white space to one '_', and any other
// character outside [0-9A-Za-z#+-.:=@_] to '_'.
func idChars(s string) string {
	s = strings.Join(strings.Fields(s), "_")
	return idUnsafe.ReplaceAllString(s, "_")
}

var pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// pathID returns "pci-ADDRESS" of the last PCI function above the disk.
func (s System) pathID(name string) string {
	p, err := filepath.EvalSymlinks(filepath.Join(s.Sys, "block", name))
	if err != nil {
		return ""
	}
	parts := strings.Split(p, string(filepath.Separator))
	for i := len(parts) - 1; i >= 0; i-- {
		if pciAddr.MatchString(parts[i]) {
			return "pci-" + parts[i]
		}
	}
	return ""
}
