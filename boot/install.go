package boot

import (
	"context"
	"errors"
)

// ErrNoInstaller reports install mode in a build without an installer.
var ErrNoInstaller = errors.New("install mode (initos.mode=install): this initrd has no installer")

// install is the "install" step of install mode (initos.mode=install on
// the signed command line, or mode install in the config): the installer
// and recovery image is the same binary, which does not mount the btrfs
// and does not switch_root. The installer (a separate package) plugs in
// through Options.Install.
func (b *Boot) install(ctx context.Context) error {
	if b.opts.Install == nil {
		return ErrNoInstaller
	}
	return b.opts.Install(ctx, b)
}
