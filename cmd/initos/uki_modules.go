package main

import (
	"errors"
	"fmt"
	"io"

	"initos/bootconfig"
	"initos/initrd"
	"initos/pecoff"
)

// bindModulesImage implements `uki build --modules-image FILE`: the
// initrd's config (/etc/initos/initrd.json) gets the image's verity root
// hash, salt and sizes, so that the UKI signature covers them; the initrd
// is rewritten with the same entries and compression.
func (f *ukiBuildFlags) bindModulesImage(u *pecoff.UKI, stdout io.Writer) error {
	if f.modImage == "" {
		if f.modImagePath != "" {
			return fmt.Errorf("%w: --modules-image-path needs --modules-image", errUsage)
		}
		return nil
	}
	if len(u.Initrd) == 0 {
		return fmt.Errorf("%w: --modules-image needs --initrd (a production initrd from initos initrd build)", errUsage)
	}
	cfg, err := initrd.ReadConfig(u.Initrd)
	if err != nil {
		return fmt.Errorf("--modules-image: initrd %s: %w", f.initrd, err)
	}
	release := string(u.Uname)
	if release == "" {
		release = cfg.Kernel
	}
	if cfg.Kernel != "" && release != cfg.Kernel {
		return fmt.Errorf("--modules-image: --uname %s, but the initrd was built for kernel %s", release, cfg.Kernel)
	}
	file := f.modImagePath
	if file == "" {
		if release == "" {
			return errors.New("--modules-image: no kernel release (--uname, or an initrd built with --kernel-dir) to name the image on the ESP: give --modules-image-path")
		}
		file = "initos/modules-" + release + ".sqfs"
	}
	info, err := initrd.ModulesImageInfo(f.modImage, file)
	if err != nil {
		return fmt.Errorf("--modules-image: %w", err)
	}
	u.Initrd, err = initrd.UpdateConfig(u.Initrd, func(c *bootconfig.Config) error {
		c.ModulesImage = info
		return nil
	})
	if err != nil {
		return fmt.Errorf("--modules-image: %w", err)
	}
	fmt.Fprintf(stdout, "modules image %s: root hash %s, %d data bytes, tree at %d (in the initrd config)\n", info.File, info.RootHash, info.DataSize, info.HashOffset)
	return nil
}
