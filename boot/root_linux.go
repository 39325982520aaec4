package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"initos/btrfsioctl"
	"initos/image/hostconf"
)

const topMount = "initos/top" // under Run: the btrfs top level, while reading initos.conf

// mountRoot is the "root" step: register every opened volume with btrfs
// (a raid1 spans several), mount the top level, read initos.conf, choose
// the root subvolume of this boot's slot, and mount it on Sysroot.
func (b *Boot) mountRoot(ctx context.Context) error {
	if err := b.loadModules("btrfs"); err != nil {
		return err
	}
	var devs []string
	for _, v := range b.Volumes {
		if err := btrfsioctl.ScanDevice(v.Mapper); err != nil {
			return fmt.Errorf("volume %s: %w", v.UUID, err)
		}
		devs = append(devs, v.Mapper)
	}
	host, err := b.readHostConfig(devs[0])
	if err != nil {
		return err
	}
	b.Host = host
	if b.Root, err = host.RootFor(b.Slot); err != nil {
		return fmt.Errorf("%s: %w", hostconf.Name, err)
	}
	b.Init = firstOf(b.Settings.Init, host.Init, b.Config.Root.InitPath())
	flags := firstOf(b.Settings.RootFlags, host.RootFlags, b.Config.Root.Flags)
	opts := joinOptions("subvol="+b.Root, flags)
	if err := mountOnce(mountSpec{devs[0], b.paths.Sysroot, "btrfs", 0, opts}); err != nil {
		return b.btrfsError(err)
	}
	if err := checkInit(b.paths.Sysroot, b.Init); err != nil {
		return fmt.Errorf("root subvolume %s: %w", b.Root, err)
	}
	b.Log.Printf("root: subvolume %s (slot %q) mounted on %s (%s), init %s", b.Root, b.Slot, b.paths.Sysroot, opts, b.Init)
	return nil
}

// readHostConfig mounts the top level read-only, reads initos.conf and
// checks that the root subvolumes it names exist.
func (b *Boot) readHostConfig(dev string) (*hostconf.Config, error) {
	top := filepath.Join(b.paths.Run, topMount)
	flags := firstOf(b.Settings.RootFlags, b.Config.Root.Flags)
	if err := mountOnce(mountSpec{dev, top, "btrfs", unix.MS_RDONLY, joinOptions("subvolid=5", flags)}); err != nil {
		return nil, b.btrfsError(err)
	}
	defer unix.Unmount(top, 0)
	raw, err := os.ReadFile(filepath.Join(top, hostconf.Name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s missing in the top level of the btrfs filesystem on %s: it names the root subvolume (the installer and `initos image root --default` write it)", hostconf.Name, dev)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", hostconf.Name, err)
	}
	host, err := hostconf.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", hostconf.Name, dev, err)
	}
	root, err := host.RootFor(b.Slot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", hostconf.Name, err)
	}
	if err := checkSubvolume(top, root); err != nil {
		return nil, fmt.Errorf("root subvolume %s (slot %q, from %s): %w", root, b.Slot, hostconf.Name, err)
	}
	return host, nil
}

// checkSubvolume checks that rel, under the top level mounted at top, is
// a btrfs subvolume (without following symlinks out of the filesystem).
func checkSubvolume(top, rel string) error {
	p := filepath.Join(top, rel)
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("missing in the top level")
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("is a %v, not a subvolume", fi.Mode().Type())
	}
	if ok, err := btrfsioctl.IsSubvolume(p); err != nil || !ok {
		return fmt.Errorf("is a directory, not a btrfs subvolume (%v)", err)
	}
	return nil
}

// checkInit checks that init, resolved inside the root (symlinks cannot
// lead out of it), is an executable file.
func checkInit(root, init string) error {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, strings.TrimPrefix(init, "/"), &unix.OpenHow{
		Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return fmt.Errorf("init %s missing: %w", init, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o111 == 0 {
		return fmt.Errorf("init %s is not an executable file (mode %o)", init, st.Mode)
	}
	return nil
}

// btrfsError adds the kernel's btrfs messages to a mount error.
func (b *Boot) btrfsError(err error) error {
	if msgs := kernelMessages("BTRFS"); len(msgs) > 0 {
		return fmt.Errorf("%w; kernel: %s", err, strings.Join(msgs, "; "))
	}
	return err
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func joinOptions(opts ...string) string {
	var out []string
	for _, o := range opts {
		if o != "" {
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}
