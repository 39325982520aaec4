package boot

import (
	"strings"

	"golang.org/x/sys/unix"
)

// vfsOptions are the generic mount options mount(8) turns into mount(2)
// flags; the kernel's filesystems do not take them in the data string.
var vfsOptions = map[string]struct {
	set, clear uintptr
}{
	"ro":          {unix.MS_RDONLY, 0},
	"rw":          {0, unix.MS_RDONLY},
	"nosuid":      {unix.MS_NOSUID, 0},
	"suid":        {0, unix.MS_NOSUID},
	"nodev":       {unix.MS_NODEV, 0},
	"dev":         {0, unix.MS_NODEV},
	"noexec":      {unix.MS_NOEXEC, 0},
	"exec":        {0, unix.MS_NOEXEC},
	"sync":        {unix.MS_SYNCHRONOUS, 0},
	"async":       {0, unix.MS_SYNCHRONOUS},
	"dirsync":     {unix.MS_DIRSYNC, 0},
	"noatime":     {unix.MS_NOATIME, 0},
	"atime":       {0, unix.MS_NOATIME},
	"nodiratime":  {unix.MS_NODIRATIME, 0},
	"diratime":    {0, unix.MS_NODIRATIME},
	"relatime":    {unix.MS_RELATIME, 0},
	"norelatime":  {0, unix.MS_RELATIME},
	"strictatime": {unix.MS_STRICTATIME, 0},
	"lazytime":    {unix.MS_LAZYTIME, 0},
	"nolazytime":  {0, unix.MS_LAZYTIME},
	"defaults":    {0, 0},
}

// splitOptions splits comma-separated mount options into mount(2) flags
// (added to flags) and the filesystem's data string, as mount(8) does.
func splitOptions(flags uintptr, opts string) (uintptr, string) {
	var data []string
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		if v, ok := vfsOptions[o]; ok {
			flags = flags&^v.clear | v.set
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}
