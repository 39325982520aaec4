package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"initos/btrfsioctl"
	"initos/image"
	"initos/luks2"
)

// volume is one opened LUKS2 volume of the install.
type volume struct {
	part   string        // /dev/vda3
	name   string        // mapper name
	mapper string        // /dev/mapper/NAME
	vk     *luks2.Secret // volume key
	header *luks2.Header
}

// mapperName is the dm name of volume i during the install.
func mapperName(id string, i int) string { return fmt.Sprintf("initos-install-%.8s-%d", id, i) }

// openVolume maps a volume with dm-crypt.
func (v *volume) open() error {
	if _, err := os.Stat(filepath.Join("/dev/mapper", v.name)); err == nil {
		if err := luks2.Deactivate(v.name); err != nil {
			return fmt.Errorf("remove the stale mapping %s: %w", v.name, err)
		}
	}
	m, err := v.header.Activate(v.name, v.part, v.vk, luks2.ActivateOptions{AllowDiscards: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", v.part, err)
	}
	v.mapper = m
	return nil
}

// mkfsBtrfs makes the filesystem over the opened volumes: raid1 for data
// and metadata with two devices or more.
func mkfsBtrfs(ctx context.Context, tool string, devs []string) error {
	args := []string{"-f", "-q", "-L", "initos"}
	if len(devs) > 1 {
		args = append(args, "-d", "raid1", "-m", "raid1")
	}
	cmd := exec.CommandContext(ctx, tool, append(args, devs...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(cmd.Args[1:], " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// findMkfs returns the mkfs.btrfs to run.
func findMkfs(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	p, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		return "", errors.New("mkfs.btrfs (btrfs-progs) is not on $PATH: the installer environment needs it")
	}
	return p, nil
}

// mountTop mounts the top level (subvolid=5) of the btrfs over devs at dir;
// device= lists every device, so a multi-device filesystem mounts without
// a prior scan.
func mountTop(devs []string, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	opts := []string{"subvolid=5"}
	for _, d := range devs {
		opts = append(opts, "device="+d)
	}
	if err := unix.Mount(devs[0], dir, "btrfs", 0, strings.Join(opts, ",")); err != nil {
		return fmt.Errorf("mount btrfs %s on %s: %w", devs[0], dir, err)
	}
	return nil
}

// unmount syncs and unmounts dir.
func unmount(dir string) error {
	if err := btrfsioctl.Sync(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// installRoot pulls the image into top/images and makes roots/NAME.
func installRoot(ctx context.Context, top, src, platform, name string) (*image.Image, string, error) {
	st, err := image.Open(filepath.Join(top, "images"))
	if err != nil {
		return nil, "", err
	}
	p, err := image.ParsePlatform(platform)
	if err != nil {
		return nil, "", err
	}
	img, _, err := st.Pull(ctx, src, p)
	if err != nil {
		return nil, "", err
	}
	rootDir := filepath.Join(top, "images", "roots", name)
	if _, err := os.Stat(rootDir); err == nil {
		return &img, "images/roots/" + name, nil
	}
	if _, err := st.Root(img.Digest, name); err != nil {
		return nil, "", err
	}
	return &img, "images/roots/" + name, nil
}

// writeHostConfig writes initos.conf in the top level: root= and the same
// root for slots A and B.
func writeHostConfig(top, root, digest string) error {
	c := &image.Config{Root: root, RootA: root, RootB: root, Image: digest}
	return image.WriteConfigFile(filepath.Join(top, image.ConfigName), c)
}
