package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"initos/kmod"
)

// loadEarlyModules is the "early-modules" step: the modules in the cpio
// (/lib/modules/<release>), the config's early_modules with their
// dependencies, loaded concurrently.
func (b *Boot) loadEarlyModules(ctx context.Context) error {
	b.ModulesDir = filepath.Join(b.paths.Modules, b.Release)
	b.mods = newModuleLoader(func(p string) error { return kmod.Load(p, "") })
	if len(b.Config.EarlyModules) == 0 {
		b.Log.Printf("early-modules: none configured")
		return nil
	}
	ix, err := kmod.Open(b.ModulesDir)
	if err != nil {
		return fmt.Errorf("modules of the initrd: %w (built for another kernel than %s?)", err, b.Release)
	}
	b.index = ix
	res := b.mods.loadAll(ix, b.Config.EarlyModules)
	if err := firstError(res); err != nil {
		return err
	}
	b.Log.Printf("early-modules: %d modules for %s", countLoaded(res), strings.Join(b.Config.EarlyModules, " "))
	return nil
}

// coldplugRounds bounds the coldplug passes: a driver that binds can add
// devices (a PCI virtio device gives a virtio device) that need another.
const coldplugRounds = 6

// coldplug is the "coldplug" step: it starts loading, in the background,
// the driver of every device that has none (coldplugRun) and returns, so
// that unlocking and mounting the root overlap with it; the handover and
// the control plane wait for it (waitColdplug). The modules the later
// steps need themselves (dm-crypt, btrfs) they load themselves, sharing
// the loader: a module is never loaded twice.
func (b *Boot) coldplug(ctx context.Context) error {
	if b.index == nil {
		b.Log.Printf("coldplug: no module index")
		return nil
	}
	b.setFirmwarePath()
	done := make(chan struct{})
	b.coldplugDone = done
	go func() {
		start := sinceBoot()
		b.coldplugErr = b.coldplugRun(ctx)
		b.Log.Printf("coldplug: finished in %v", (sinceBoot() - start).Round(time.Microsecond))
		b.afterColdplug()
		close(done)
	}()
	b.Log.Printf("coldplug: started in the background")
	return nil
}

// waitColdplug waits for the background coldplug and returns its error.
func (b *Boot) waitColdplug() error {
	if b.coldplugDone == nil {
		b.afterColdplug()
		return nil
	}
	<-b.coldplugDone
	return b.coldplugErr
}

// coldplugRun loads the driver of every device that has none, from the
// modules image's modules.alias (or the cpio's), until no new device
// appears. A device that no module matches is logged.
func (b *Boot) coldplugRun(ctx context.Context) error {
	seen := map[string]bool{}
	devices := filepath.Join(b.paths.Sys, "devices")
	var unmatched []Device
	loaded := 0
	for round := 0; round < coldplugRounds; round++ {
		devs, err := unboundDevices(devices)
		if err != nil {
			return fmt.Errorf("walk %s: %w", devices, err)
		}
		aliases := newAliases(devs, seen)
		if len(aliases) == 0 {
			break
		}
		res := b.mods.loadAll(b.index, aliases)
		for _, r := range res {
			if errors.Is(r.Err, unix.EIO) && b.Config.ModulesImage.Enabled() {
				return b.imageError(b.Config.ModulesImage, r.Err)
			}
			if r.Err != nil && !isNotFound(r.Err) {
				b.Log.Printf("coldplug: %s: %v", r.Name, r.Err)
			}
		}
		loaded += countLoaded(res)
		unmatched = append(unmatched, notFound(devs, res)...)
		time.Sleep(20 * time.Millisecond) // let new devices register
	}
	for _, d := range unmatched {
		b.Log.Printf("coldplug: no module for device %s (%s)", shortDevice(d.Path), d.Modalias)
	}
	b.Log.Printf("coldplug: %d modules for %d device aliases, %d devices without a module", loaded, len(seen), len(unmatched))
	return nil
}

// notFound returns the devices whose modalias resolved to no module.
func notFound(devs []Device, res []LoadResult) []Device {
	missing := map[string]bool{}
	for _, r := range res {
		if isNotFound(r.Err) {
			missing[r.Name] = true
		}
	}
	var out []Device
	for _, d := range devs {
		if missing[d.Modalias] {
			out = append(out, d)
			delete(missing, d.Modalias)
		}
	}
	return out
}

// setFirmwarePath points the kernel's firmware loader at the modules
// image, searched before /lib/firmware (which the initrd does not have).
func (b *Boot) setFirmwarePath() {
	if b.FirmwareDir == "" {
		return
	}
	p := filepath.Join(b.paths.Sys, "module/firmware_class/parameters/path")
	if err := os.WriteFile(p, []byte(b.FirmwareDir), 0); err != nil {
		b.Log.Printf("coldplug: firmware path %s: %v", b.FirmwareDir, err)
	}
}

// loadModules loads names (needed by a step: dm-crypt, btrfs...) with
// their dependencies from the current index.
func (b *Boot) loadModules(names ...string) error {
	if b.index == nil {
		return fmt.Errorf("load modules %s: no module index", strings.Join(names, ", "))
	}
	err := firstError(b.mods.loadAll(b.index, names))
	if errors.Is(err, unix.EIO) && b.Config.ModulesImage.Enabled() {
		return b.imageError(b.Config.ModulesImage, err)
	}
	return err
}
