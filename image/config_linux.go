package image

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"initos/btrfsioctl"
	"initos/internal/atomicfile"
	"initos/internal/boundedfile"
)

// TopLevel returns the directory at or above path where the top level
// (subvolume 5) of path's btrfs filesystem is mounted, and path relative
// to it. It fails if the filesystem is mounted only by a subvolume.
func TopLevel(path string) (top, rel string, err error) {
	path, err = filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	mnt, err := mountID(path)
	if err != nil {
		return "", "", err
	}
	// Walk up within path's mount to the directory that is subvolume 5.
	for dir := path; ; dir = filepath.Dir(dir) {
		if id, err := mountID(dir); err != nil || id != mnt {
			break
		}
		if ok, _ := btrfsioctl.IsSubvolume(dir); ok {
			if id, err := btrfsioctl.ID(dir); err == nil && id == 5 {
				rel, err := filepath.Rel(dir, path)
				if rel == "." {
					rel = ""
				}
				return dir, rel, err
			}
		}
		if dir == "/" {
			break
		}
	}
	return "", "", fmt.Errorf("find btrfs top level of %s: its mount is not of subvolume 5 (mount subvolid=5 or give the config path)", path)
}

func mountID(p string) (uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return 0, &os.PathError{Op: "statx", Path: p, Err: err}
	}
	return st.Mnt_id, nil
}

// ReadConfigFile reads and parses a host-root config file.
func ReadConfigFile(path string) (*Config, error) {
	return boundedfile.Read("read host config", path, MaxConfigSize, ParseConfig)
}

// WriteConfigFile writes c to path atomically (internal/atomicfile: temp
// file, fsync, rename, fsync of the directory).
func WriteConfigFile(path string, c *Config) error {
	b, err := c.Marshal()
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
