package boot

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Device is a device in sysfs that asks for a driver: its directory and
// its modalias.
type Device struct {
	Path     string // sysfs directory, e.g. /sys/devices/pci0000:00/0000:00:02.0
	Modalias string // e.g. pci:v00001AF4d00001042sv...
}

// maxModalias bounds one modalias file (the kernel's are under 4 KiB).
const maxModalias = 4096

// unboundDevices walks sysfs devices (e.g. /sys/devices) for modalias
// files of devices that have no driver bound yet, sorted by path. Symlinks
// are not followed (sysfs links every device many times).
func unboundDevices(devicesDir string) ([]Device, error) {
	var devs []Device
	err := filepath.WalkDir(devicesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // devices come and go while we walk
		}
		if d.Name() != "modalias" || d.IsDir() {
			return nil
		}
		dir := filepath.Dir(p)
		if _, err := os.Lstat(filepath.Join(dir, "driver")); err == nil {
			return nil // bound already
		}
		b, err := readSmall(p, maxModalias)
		if err != nil {
			return nil
		}
		if alias := string(bytes.TrimSpace(b)); alias != "" {
			devs = append(devs, Device{Path: dir, Modalias: alias})
		}
		return nil
	})
	sort.Slice(devs, func(i, j int) bool { return devs[i].Path < devs[j].Path })
	return devs, err
}

// readSmall reads at most max bytes of a (sysfs) file.
func readSmall(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, max)
	n, err := f.Read(b)
	if n > 0 {
		err = nil
	}
	return b[:n], err
}

// newAliases returns the modaliases of devs not in seen (and adds them),
// in order, each once.
func newAliases(devs []Device, seen map[string]bool) []string {
	var out []string
	for _, d := range devs {
		if !seen[d.Modalias] {
			seen[d.Modalias] = true
			out = append(out, d.Modalias)
		}
	}
	return out
}

// shortDevice names a sysfs device directory briefly for the log.
func shortDevice(p string) string {
	if i := strings.Index(p, "/devices/"); i >= 0 {
		return p[i+len("/devices/"):]
	}
	return p
}
