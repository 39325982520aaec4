package install

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"initos/luks2"
)

// gpt writes each disk's partition table (unless it is already the
// planned one) and makes the kernel show the partitions.
func (r *run) gpt(ctx context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	wrote := 0
	for _, d := range r.plan.Disks {
		if d.Action == ActionWipe {
			if err := wipeOld(d); err != nil {
				return "", diskErr(StepGPT, d, err)
			}
		}
		changed, err := writeGPT(d)
		if err != nil {
			return "", diskErr(StepGPT, d, err)
		}
		if changed {
			wrote++
		}
		if err := r.opts.System.rereadPartitions(ctx, d); err != nil {
			return "", diskErr(StepGPT, d, err)
		}
	}
	if wrote == 0 {
		return "already done", nil
	}
	return "done", nil
}

// wipeOld zeroes the first 16 MiB of every partition of the old table
// (headers and superblocks: an old LUKS2 header must not pass for ours)
// and of the planned LUKS partition.
func wipeOld(d *PlannedDisk) error {
	f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var spans [][2]int64
	if old := d.Content.Layout; old != nil {
		for _, p := range old.Partitions {
			off, size := old.Offset(&p)
			spans = append(spans, [2]int64{off, size})
		}
	}
	off, size := d.Layout.Offset(d.Layout.Part(PartLUKS))
	for _, s := range append(spans, [2]int64{off, size}) {
		if s[0] < 0 || s[0]+s[1] > int64(d.Size) {
			continue
		}
		if err := zeroRange(f, s[0], min(s[1], luks2.DefaultDataOffset)); err != nil {
			return fmt.Errorf("wipe at %d: %w", s[0], err)
		}
	}
	return f.Sync()
}

// esp puts the UKI and the modules image on every ESP, unless they are
// already there and verify.
func (r *run) esp(ctx context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	files := r.art.espFiles()
	wrote := 0
	for _, d := range r.plan.Disks {
		for _, p := range d.Layout.ESPs() {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			changed, err := r.fillESP(d, p, files)
			if err != nil {
				return "", diskErr(StepESP, d, fmt.Errorf("ESP %d: %w", p.Number, err))
			}
			if changed {
				wrote++
			}
		}
	}
	if wrote == 0 {
		return "already done", nil
	}
	return "done", nil
}

// fillESP checks one ESP and writes it when the check fails.
func (r *run) fillESP(d *PlannedDisk, p *Partition, files []ESPFile) (bool, error) {
	node, err := r.opts.System.partitionNode(d.Name, p.Number)
	if err != nil {
		return false, err
	}
	f, err := os.OpenFile(node, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, size := d.Layout.Offset(p)
	if err := checkESP(f, 0, size, d.SectorSize, files); err == nil {
		return false, nil
	}
	r.logf("esp: writing %s (partition %d of %s)", node, p.Number, d.ID)
	if err := formatESP(f, 0, size, d.SectorSize, espLabel(p.Number), files); err != nil {
		return false, err
	}
	if err := syncAndDrop(f); err != nil {
		return false, err
	}
	if err := checkESP(f, 0, size, d.SectorSize, files); err != nil {
		return false, fmt.Errorf("verify after writing: %w", err)
	}
	return true, nil
}

// syncAndDrop flushes a block device and drops its cached pages, so that
// the read-back check reads the disk (BLKFLSBUF).
func syncAndDrop(f *os.File) error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0); err != nil && err != unix.ENOTTY {
		return fmt.Errorf("ioctl(BLKFLSBUF): %w", err)
	}
	return nil
}

// luks formats a LUKS2 volume on every disk: one recovery key for all
// of them, a TPM2 keyslot each, and the pending install token. The
// volumes of an interrupted install are formatted again (their keys died
// with it; nothing is on them yet).
func (r *run) luks(context.Context) (string, error) {
	if r.plan.Complete {
		return "skipped: complete", nil
	}
	key, err := luks2.NewRecoveryKey(nil)
	if err != nil {
		return "", err
	}
	r.recovery = key
	tok := &Token{State: StatePending, InstallID: r.plan.InstallID, Disks: r.plan.IDs(), Time: r.now().UTC().Format(time.RFC3339)}
	for i, d := range r.plan.Disks {
		v, err := r.formatDisk(d, i, tok, r.enroll)
		if err != nil {
			return "", diskErr(StepLUKS, d, err)
		}
		r.vols = append(r.vols, v)
		r.sum.Disks[i].LUKSUUID = v.header.UUID()
	}
	r.sum.TPM = "not enrolled (recovery key only)"
	if r.enroll != nil {
		r.sum.TPM = "enrolled: " + describePolicy(r.policy)
		if r.bound {
			r.sum.TPM += "; bound (initos-binding)"
		} else if r.opts.Enroll == nil {
			r.sum.TPM += "; NOT bound (no signed PCR 11 policy: not booted from a signed InitOS UKI), the initrd needs unlock.allow_unbound"
		}
	}
	return "done", nil
}

// formatDisk stages, commits and reads back one volume.
func (r *run) formatDisk(d *PlannedDisk, i int, tok *Token, enroll EnrollFunc) (*volume, error) {
	part, err := r.opts.System.partitionNode(d.Name, PartLUKS)
	if err != nil {
		return nil, err
	}
	vk, err := newVolumeKey()
	if err != nil {
		return nil, err
	}
	v := &volume{part: part, name: mapperName(r.plan.InstallID, i), vk: vk}
	mem, h, err := stageVolume(vk, r.recovery, tok, enroll)
	if err != nil {
		vk.Destroy()
		return nil, err
	}
	if err := commitVolume(part, mem, h); err != nil {
		vk.Destroy()
		return nil, fmt.Errorf("write the LUKS2 header: %w", err)
	}
	f, back, err := readVolume(part)
	if err != nil {
		vk.Destroy()
		return nil, fmt.Errorf("read back the LUKS2 header: %w", err)
	}
	f.Close()
	if back.UUID() != h.UUID() || back.VerifyVolumeKey(vk.Bytes()) != nil || findToken(back) == nil {
		vk.Destroy()
		return nil, fmt.Errorf("read back the LUKS2 header: it is not the one written (UUID %s, want %s)", back.UUID(), h.UUID())
	}
	v.header = back
	return v, nil
}
