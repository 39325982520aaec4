package boot

import "path/filepath"

// What install mode's installer (Options.Install) needs from the boot.

// ESPDir is where the ESP the firmware booted from is mounted (read-only)
// once the esp step ran.
func (b *Boot) ESPDir() string { return filepath.Join(b.paths.Run, espMount) }

// ExtraDir is where systemd-stub leaves the running UKI's signed PCR
// policy and its public key (/.extra in a booted initrd).
func (b *Boot) ExtraDir() string { return filepath.Dir(b.paths.PCRSignature) }

// LoadModules loads names with their dependencies from the module index
// in use (the verified modules image once the modules step opened one,
// else the initrd's): for an installer that needs dm-crypt and btrfs,
// which the kernel's own module requests would not find (no usermode
// modprobe).
func (b *Boot) LoadModules(names ...string) error { return b.loadModules(names...) }
