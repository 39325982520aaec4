package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeGPT makes the disk's partition table the planned layout, unless it
// already is (same partitions and GUIDs, primary copy valid). A disk to
// wipe first gets its first and last MiB zeroed (old tables and
// signatures). It reports whether it wrote.
func writeGPT(d *PlannedDisk) (bool, error) {
	f, err := os.OpenFile(d.Path, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return false, fmt.Errorf("open %s exclusively: %w", d.Path, err)
	}
	defer f.Close()
	if found := readGPT(f, int64(d.Size), d.SectorSize); found != nil && sameTable(d.Layout, found) && primaryValid(f, d.SectorSize) {
		return false, nil
	}
	if d.Action == ActionWipe {
		if err := zeroEnds(f, int64(d.Size)); err != nil {
			return false, fmt.Errorf("wipe %s: %w", d.Path, err)
		}
	}
	if err := d.Layout.toGPT(d.PhysSector).Write(f, int64(d.Size)); err != nil {
		return false, fmt.Errorf("write the GPT of %s: %w", d.Path, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("write the GPT of %s: sync: %w", d.Path, err)
	}
	return true, nil
}

// sameTable is sameGeometry plus equal disk and partition GUIDs.
func sameTable(want, found *Layout) bool {
	if !sameGeometry(want, found) || want.DiskGUID != found.DiskGUID {
		return false
	}
	for _, p := range want.Partitions {
		if found.Part(p.Number).GUID != p.GUID {
			return false
		}
	}
	return true
}

// primaryValid reports whether the primary GPT header is present (a crash
// between go-diskfs's backup and primary writes leaves only the backup).
func primaryValid(f *os.File, ss int) bool {
	b := make([]byte, 8)
	_, err := f.ReadAt(b, int64(ss))
	return err == nil && string(b) == "EFI PART"
}

// zeroEnds zeroes the first and last MiB of a disk.
func zeroEnds(f *os.File, size int64) error {
	n := min(int64(probeSpan), size)
	zero := make([]byte, n)
	for _, off := range []int64{0, size - n} {
		if _, err := f.WriteAt(zero, off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// rereadPartitions makes the kernel's partitions of the disk match its
// table: BLKRRPART, and when the kernel then does not show the planned
// partitions (EBUSY because a partition is open, or a kernel without GPT
// support, like the CI host's), BLKPG deletes and adds them one by one.
// No udev: the nodes come from devtmpfs, or mknod when there is none.
func (s System) rereadPartitions(ctx context.Context, d *PlannedDisk) error {
	f, err := os.OpenFile(d.Path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", d.Path, err)
	}
	defer f.Close()
	rrErr := ioctlRetry(f, unix.BLKRRPART, 0)
	if rrErr != nil || !s.partitionsMatch(d) {
		if err := s.blkpgAll(f, d); err != nil {
			return fmt.Errorf("reread the partitions of %s: BLKRRPART: %v; BLKPG: %w", d.Path, rrErr, err)
		}
	}
	return s.waitPartitions(ctx, d)
}

// partitionsMatch reports whether the kernel shows exactly the planned
// partitions (number, start, size).
func (s System) partitionsMatch(d *PlannedDisk) bool {
	for n := 1; n <= 16; n++ {
		p, name := d.Layout.Part(n), s.partitionName(d.Name, n)
		if p == nil || name == "" {
			if (p == nil) != (name == "") {
				return false
			}
			continue
		}
		off, size := d.Layout.Offset(p)
		dir := filepath.Join(s.Sys, "block", d.Name, name)
		if attrInt(dir, "start")*512 != off || attrInt(dir, "size")*512 != size {
			return false
		}
	}
	return true
}

// ioctlRetry issues a no-argument ioctl, retrying EBUSY a few times
// (a short-lived opener such as blkid may hold the disk).
func ioctlRetry(f *os.File, req uint, arg uintptr) error {
	var err error
	for i := 0; i < 10; i++ {
		if err = unix.IoctlSetInt(int(f.Fd()), req, int(arg)); err != unix.EBUSY {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// blkpgAll deletes partitions 1..16 the kernel knows and adds the planned
// ones.
func (s System) blkpgAll(f *os.File, d *PlannedDisk) error {
	for n := 1; n <= 16; n++ {
		if s.partitionName(d.Name, n) == "" {
			continue
		}
		if err := blkpg(f, unix.BLKPG_DEL_PARTITION, unix.BlkpgPartition{Pno: int32(n)}); err != nil {
			return fmt.Errorf("delete partition %d: %w", n, err)
		}
	}
	for _, p := range d.Layout.Partitions {
		off, size := d.Layout.Offset(&p)
		if err := blkpg(f, unix.BLKPG_ADD_PARTITION, unix.BlkpgPartition{Start: off, Length: size, Pno: int32(p.Number)}); err != nil {
			return fmt.Errorf("add partition %d: %w", p.Number, err)
		}
	}
	return nil
}

func blkpg(f *os.File, op int32, part unix.BlkpgPartition) error {
	arg := unix.BlkpgIoctlArg{Op: op, Datalen: int32(unsafe.Sizeof(part)), Data: (*byte)(unsafe.Pointer(&part))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	runtime.KeepAlive(&part)
	runtime.KeepAlive(f)
	if errno != 0 {
		return os.NewSyscallError("ioctl(BLKPG)", errno)
	}
	return nil
}

// waitPartitions waits until the kernel shows every planned partition
// and its /dev node exists, making the node when nothing else does.
func (s System) waitPartitions(ctx context.Context, d *PlannedDisk) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, p := range d.Layout.Partitions {
		for s.partitionName(d.Name, p.Number) == "" {
			select {
			case <-ctx.Done():
				return fmt.Errorf("partition %d of %s did not appear in %s", p.Number, d.Path, filepath.Join(s.Sys, "block", d.Name))
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := s.partitionNode(d.Name, p.Number); err != nil {
			return err
		}
	}
	return nil
}

// partitionNode returns /dev/NAME of partition n, made with mknod from
// its sysfs dev numbers when devtmpfs did not make it.
func (s System) partitionNode(disk string, n int) (string, error) {
	name := s.partitionName(disk, n)
	if name == "" {
		return "", fmt.Errorf("disk %s has no partition %d", disk, n)
	}
	path := filepath.Join(s.Dev, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	dev := s.devNum(name)
	if err := unix.Mknod(path, unix.S_IFBLK|0o600, int(dev)); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("make the node of %s: %w", path, err)
	}
	return path, nil
}
