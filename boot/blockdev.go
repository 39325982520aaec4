package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Partition is a GPT partition of a disk, with its device nodes.
type Partition struct {
	GPTPartition
	Device string // the partition's node, e.g. /dev/vda1
	Disk   string // the disk's node, e.g. /dev/vda
}

// skipDisk are block devices that never hold InitOS partitions.
var skipDisk = []string{"loop", "ram", "zram", "dm-", "sr", "md", "nbd", "fd"}

// scanPartitions returns the GPT partitions of every disk in sysfs
// (sysBlock, e.g. /sys/class/block) whose nodes are in dev. Disks without
// a readable GPT are skipped; their errors are returned apart.
func scanPartitions(sysBlock, dev string) ([]Partition, []error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, []error{err}
	}
	var parts []Partition
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if skipped(name) || exists(filepath.Join(sysBlock, name, "partition")) {
			continue
		}
		p, err := diskPartitions(sysBlock, dev, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(dev, name), err))
			continue
		}
		parts = append(parts, p...)
	}
	return parts, errs
}

func skipped(name string) bool {
	for _, p := range skipDisk {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// diskPartitions reads the GPT of disk name and maps its entries to the
// partition nodes the kernel made (by partition number).
func diskPartitions(sysBlock, dev, name string) ([]Partition, error) {
	sectors, err := readInt(filepath.Join(sysBlock, name, "size"))
	if err != nil || sectors == 0 {
		return nil, err // no medium
	}
	ss, err := readInt(filepath.Join(sysBlock, name, "queue/logical_block_size"))
	if err != nil {
		ss = 512
	}
	f, err := os.Open(filepath.Join(dev, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gpt, err := ReadGPT(f, sectors*512, int(ss))
	if err != nil {
		return nil, err
	}
	nodes := partitionNodes(filepath.Join(sysBlock, name))
	var parts []Partition
	for _, g := range gpt {
		if node, ok := nodes[g.Number]; ok {
			parts = append(parts, Partition{GPTPartition: g, Device: filepath.Join(dev, node), Disk: filepath.Join(dev, name)})
		}
	}
	return parts, nil
}

// partitionNodes maps partition numbers to the names of the partition
// devices under a disk's sysfs directory (vda1, nvme0n1p1).
func partitionNodes(diskDir string) map[int]string {
	m := map[int]string{}
	ents, _ := os.ReadDir(diskDir)
	for _, e := range ents {
		if n, err := readInt(filepath.Join(diskDir, e.Name(), "partition")); err == nil {
			m[int(n)] = e.Name()
		}
	}
	return m
}

func readInt(p string) (int64, error) {
	b, err := readSmall(p, 64)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// pollInterval is how often waits look again.
const pollInterval = 25 * time.Millisecond

// waitFor calls found until it returns true, an error, ctx ends or
// timeout passes; it returns whether it was found.
func waitFor(ctx context.Context, timeout time.Duration, found func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := found()
		if ok || err != nil {
			return ok, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}
