package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
)

// partOffset returns the byte offset of the GPT partition named name
// in the disk image (sfdisk --json).
func partOffset(disk, name string) (int64, error) {
	out, err := exec.Command("sfdisk", "--json", disk).Output()
	if err != nil {
		return 0, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	var t struct {
		PartitionTable struct {
			SectorSize int64 `json:"sectorsize"`
			Partitions []struct {
				Start int64  `json:"start"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &t); err != nil {
		return 0, fmt.Errorf("sfdisk --json %s: %w", disk, err)
	}
	ss := t.PartitionTable.SectorSize
	if ss == 0 {
		ss = 512
	}
	for _, p := range t.PartitionTable.Partitions {
		if p.Name == name {
			return p.Start * ss, nil
		}
	}
	return 0, fmt.Errorf("%s: no partition named %q", disk, name)
}

// espFile copies a file out of, or into, a FAT partition of a disk image
// with mtools (`mcopy -i DISK@@OFFSET`), narrated.
type espFile struct {
	n    *narrator
	disk string
	off  int64
}

func (e espFile) image() string { return fmt.Sprintf("%s@@%d", e.disk, e.off) }

func (e espFile) get(ctx context.Context, path, to string) error {
	return e.n.run(ctx, cmd{name: "mcopy", args: []string{"-n", "-i", e.image(), "::/" + path, to}})
}

func (e espFile) put(ctx context.Context, from, path string) error {
	return e.n.run(ctx, cmd{name: "mcopy", args: []string{"-o", "-i", e.image(), from, "::/" + path}})
}

// changeCmdline changes one byte of the UKI file's .cmdline (the first
// "console=" becomes "consolE="), after it was signed.
func changeCmdline(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	i := bytes.Index(b, []byte("console="))
	if i < 0 {
		return 0, fmt.Errorf("%s: no console= in the UKI", file)
	}
	b[i+6] = 'E'
	return i + 6, os.WriteFile(file, b, 0o644)
}

// flipBit flips bit 0 of the byte at off in file.
func flipBit(file string, off int64) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return err
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b[:], off); err != nil {
		return err
	}
	return f.Close()
}
