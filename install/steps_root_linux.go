package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"initos/internal/atomicfile"
	"initos/luks2"
)

// btrfs opens the volumes, makes the filesystem over them and mounts it.
func (r *run) btrfs(ctx context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	var devs []string
	for i, v := range r.vols {
		if err := v.open(); err != nil {
			return "", diskErr(StepBtrfs, r.plan.Disks[i], err)
		}
		devs = append(devs, v.mapper)
	}
	if err := mkfsBtrfs(ctx, r.mkfs, devs); err != nil {
		return "", err
	}
	dir := r.opts.WorkDir
	if dir == "" {
		dir = filepath.Join("/run", "initos-install-"+r.plan.InstallID[:8])
	}
	if err := mountTop(devs, dir); err != nil {
		return "", err
	}
	r.top = dir
	return "done", nil
}

// image pulls the root image into the store and makes the root subvolume.
func (r *run) image(ctx context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	img, root, err := installRoot(ctx, r.top, r.cfg.Image, r.cfg.Platform, r.cfg.RootName)
	if err != nil {
		return "", fmt.Errorf("root image %s: %w", r.cfg.Image, err)
	}
	r.img, r.root = img, root
	r.sum.Image, r.sum.Root = img.Digest, root
	return "done", nil
}

// config writes initos.conf.
func (r *run) config(context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	if err := writeHostConfig(r.top, r.root, r.img.Digest); err != nil {
		return "", err
	}
	return "done", nil
}

// finish hands the recovery key over, closes the filesystem and the
// volumes, and marks every volume complete: from then on a rerun leaves
// the disks alone.
func (r *run) finish(context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	if err := r.handOverKey(); err != nil {
		return "", err
	}
	if err := unmount(r.top); err != nil {
		return "", err
	}
	r.top = ""
	tok := &Token{State: StateComplete, InstallID: r.plan.InstallID, Disks: r.plan.IDs(), Image: r.img.Digest, Time: r.now().UTC().Format(time.RFC3339)}
	for i, v := range r.vols {
		if err := luks2.Deactivate(v.name); err != nil {
			return "", diskErr(StepFinish, r.plan.Disks[i], err)
		}
		v.mapper = ""
		f, h, err := readVolume(v.part)
		if err == nil {
			err = markComplete(f, h, tok)
			if serr := f.Sync(); err == nil {
				err = serr
			}
			f.Close()
		}
		if err != nil {
			return "", diskErr(StepFinish, r.plan.Disks[i], err)
		}
	}
	r.closeVolumes()
	return "done", nil
}

// handOverKey writes the recovery key to the configured file and shows it.
func (r *run) handOverKey() error {
	if f := r.cfg.RecoveryKey.File; f != "" {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return fmt.Errorf("recovery key file: %w", err)
		}
		if err := atomicfile.WriteFile(f, []byte(r.recovery+"\n"), 0o600); err != nil {
			return fmt.Errorf("recovery key file: %w", err)
		}
		r.sum.RecoveryKeyFile = f
	}
	if r.cfg.RecoveryKey.Hide {
		return nil
	}
	r.sum.RecoveryKey = r.recovery
	if r.opts.ShowRecoveryKey != nil {
		return r.opts.ShowRecoveryKey(r.recovery)
	}
	r.logf("Recovery key (shown once; it opens every volume of this install when the TPM cannot):\n    %s", r.recovery)
	return nil
}

// bootEntries makes the firmware boot entries InitOS A and B.
func (r *run) bootEntries(context.Context) (string, error) {
	switch {
	case r.cfg.NoBootEntries:
		return "skipped: no_boot_entries", nil
	case r.efi == nil:
		return "skipped: no UEFI variables", nil
	}
	d := r.plan.Disks[0]
	entries, err := ensureBootEntries(r.efi, d)
	if err != nil {
		return "", diskErr(StepBootEntries, d, err)
	}
	r.sum.BootEntries = entries
	for _, e := range entries {
		if e.Created {
			return "done", nil
		}
	}
	return "already done", nil
}

// closeVolumes removes the dm mappings still open and wipes the keys.
func (r *run) closeVolumes() {
	for _, v := range r.vols {
		if v.mapper != "" {
			luks2.Deactivate(v.name)
			v.mapper = ""
		}
		if v.vk != nil {
			v.vk.Destroy()
			v.vk = nil
		}
	}
}
