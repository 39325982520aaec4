package install

import (
	"bufio"
	"fmt"
	"initos/internal/mountinfo"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// busyDisks returns, for each whole disk that must not be written, why:
// a mounted filesystem or swap on it (through partitions, device-mapper,
// md and loop devices backed by files on it), a holder (dm, md) of the
// disk or of one of its partitions, or a mounted btrfs spanning it.
func (s System) busyDisks() (map[string]string, error) {
	busy := map[string]string{}
	mark := func(dev uint64, why string) {
		for _, d := range s.disksUnder(dev, 0) {
			if busy[d] == "" {
				busy[d] = why
			}
		}
	}
	if err := s.eachMount(func(dev uint64, src, target string) {
		mark(dev, fmt.Sprintf("%s is mounted on %s", src, target))
	}); err != nil {
		return nil, err
	}
	s.eachSwap(func(dev uint64, path string) { mark(dev, fmt.Sprintf("%s is in use as swap", path)) })
	s.btrfsMembers(busy)
	s.holders(busy)
	return busy, nil
}

// eachMount calls f for every mounted block device in mountinfo.
func (s System) eachMount(f func(dev uint64, src, target string)) error {
	file, err := os.Open(filepath.Join(s.Proc, "self", "mountinfo"))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := indexOf(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(fields[2], "%d:%d", &maj, &min); err != nil {
			continue
		}
		dev, src := unix.Mkdev(maj, min), fields[sep+2]
		if maj == 0 { // btrfs subvolumes, overlay, tmpfs: use the source device if any
			if dev = rdev(src); dev == 0 {
				continue
			}
		}
		f(dev, src, mountinfo.Unescape(fields[4]))
	}
	return sc.Err()
}

func indexOf(v []string, s string) int {
	for i, x := range v {
		if x == s {
			return i
		}
	}
	return -1
}

// rdev returns the device number of a block device node (0 if path is
// not one).
func rdev(path string) uint64 {
	var st unix.Stat_t
	if !strings.HasPrefix(path, "/") || unix.Stat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0
	}
	return st.Rdev
}

// eachSwap calls f for every active swap device or file.
func (s System) eachSwap(f func(dev uint64, path string)) {
	b, err := os.ReadFile(filepath.Join(s.Proc, "swaps"))
	if err != nil {
		return
	}
	for i, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if i == 0 || len(fields) == 0 {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fields[0], &st) != nil {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			f(st.Rdev, fields[0])
		} else {
			f(st.Dev, fields[0])
		}
	}
}

// disksUnder returns the whole disks a block device dev lives on: itself
// or its parent for a partition, the slaves of dm and md devices, and
// the disk holding a loop device's backing file.
func (s System) disksUnder(dev uint64, depth int) []string {
	if depth > 8 {
		return nil
	}
	link, err := os.Readlink(filepath.Join(s.Sys, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))))
	if err != nil {
		return nil
	}
	name := filepath.Base(link)
	if slaves, err := os.ReadDir(filepath.Join(s.Sys, "class", "block", name, "slaves")); err == nil && len(slaves) > 0 {
		var out []string
		for _, sl := range slaves {
			out = append(out, s.disksUnder(s.devNum(sl.Name()), depth+1)...)
		}
		return out
	}
	if bf := attr(s.Sys, "block", name, "loop", "backing_file"); bf != "" {
		var st unix.Stat_t
		if unix.Stat(strings.TrimSuffix(bf, " (deleted)"), &st) == nil {
			return append(s.disksUnder(st.Dev, depth+1), name)
		}
		return []string{name}
	}
	return []string{s.diskOf(name)}
}

// devNum reads a block device's number from sysfs.
func (s System) devNum(name string) uint64 {
	var maj, min uint32
	fmt.Sscanf(attr(s.Sys, "class", "block", name, "dev"), "%d:%d", &maj, &min)
	return unix.Mkdev(maj, min)
}

// btrfsMembers marks the devices of every mounted btrfs (mountinfo shows
// only one of a multi-device filesystem).
func (s System) btrfsMembers(busy map[string]string) {
	fsids, _ := os.ReadDir(filepath.Join(s.Sys, "fs", "btrfs"))
	for _, id := range fsids {
		devs, _ := os.ReadDir(filepath.Join(s.Sys, "fs", "btrfs", id.Name(), "devices"))
		for _, d := range devs {
			for _, disk := range s.disksUnder(s.devNum(d.Name()), 0) {
				if busy[disk] == "" {
					busy[disk] = fmt.Sprintf("%s is a device of mounted btrfs %s", d.Name(), id.Name())
				}
			}
		}
	}
}

// holders marks disks of which the disk itself or a partition is held by
// another block device (a dm or md device built on it).
func (s System) holders(busy map[string]string) {
	names, _ := s.wholeDisksAll()
	for _, disk := range names {
		dirs := []string{filepath.Join(s.Sys, "block", disk)}
		ents, _ := os.ReadDir(dirs[0])
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), disk) {
				dirs = append(dirs, filepath.Join(dirs[0], e.Name()))
			}
		}
		for _, d := range dirs {
			if hs, _ := os.ReadDir(filepath.Join(d, "holders")); len(hs) > 0 && busy[disk] == "" {
				busy[disk] = fmt.Sprintf("%s is held by %s", filepath.Base(d), hs[0].Name())
			}
		}
	}
}

// wholeDisksAll lists every entry of /sys/block, virtual ones included.
func (s System) wholeDisksAll() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.Sys, "block"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}
