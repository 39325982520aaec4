package bootdisk

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// GPT partition types of the InitOS layout, and a plain Linux one.
const (
	TypeESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	TypeLUKS  = "CA7D7CCB-63ED-4C53-861C-1742536059CC"
	TypeLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

// Part is one partition of a Disk.
type Part struct {
	Name, Type, UUID string
	MiB              int64 // size
	Start            int64 // byte offset, filled in by NewDisk
}

// Size returns the partition's size in bytes.
func (p Part) Size() int64 { return p.MiB << 20 }

// Disk is a raw disk image with a GPT.
type Disk struct {
	Path  string
	Parts []Part // in partition number order (number = index + 1)
}

// NewDisk writes a sparse disk image with a GPT holding parts, 1 MiB
// aligned from 1 MiB on (go-diskfs writes the tables).
func NewDisk(path string, parts []Part) (*Disk, error) {
	total := int64(2) // MiB: the alignment at the start, the backup table at the end
	for _, p := range parts {
		total += p.MiB
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(total << 20); err != nil {
		return nil, err
	}
	d := &Disk{Path: path}
	t := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true}
	start := int64(1 << 20)
	for i, p := range parts {
		p.Start = start
		t.Partitions = append(t.Partitions, &gpt.Partition{Index: i + 1, Start: uint64(start / 512),
			End: uint64((start+p.Size())/512 - 1), Size: uint64(p.Size()), Type: gpt.Type(p.Type), Name: p.Name, GUID: p.UUID})
		d.Parts = append(d.Parts, p)
		start += p.Size()
	}
	if err := t.Write(f, total<<20); err != nil {
		return nil, fmt.Errorf("write GPT of %s: %w", path, err)
	}
	return d, f.Close()
}

// WriteAt writes data into partition n (1-based) at off.
func (d *Disk) WriteAt(n int, off int64, data []byte) error {
	return WriteRegion(d.Path, d.Parts[n-1].Start+off, data)
}

// WriteRegion writes data at off of the file path.
func WriteRegion(path string, off int64, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		return err
	}
	return f.Close()
}

// ReadRegion reads n bytes at off of the file path.
func ReadRegion(path string, off, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(io.NewSectionReader(f, off, n), b)
	return b, err
}

// FormatESP makes a FAT32 filesystem in partition n (mkfs.vfat) and
// copies files (ESP path -> contents) into it (mtools).
func (d *Disk) FormatESP(n int, label string, files map[string][]byte) error {
	p := d.Parts[n-1]
	tmp, err := os.MkdirTemp("", "bootdisk-esp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img := filepath.Join(tmp, "esp.img")
	if out, err := exec.Command("mkfs.vfat", "-F", "32", "-n", label, "-C", img, strconv.FormatInt(p.Size()/1024, 10)).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.vfat: %w\n%s", err, out)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		return err
	}
	if err := d.WriteAt(n, 0, data); err != nil {
		return err
	}
	for name, content := range files {
		if err := d.PutFile(n, name, content); err != nil {
			return err
		}
	}
	return nil
}

// PutFile writes one file (creating its directories) into the FAT
// filesystem of partition n, replacing it if present.
func (d *Disk) PutFile(n int, name string, content []byte) error {
	img := fmt.Sprintf("%s@@%d", d.Path, d.Parts[n-1].Start)
	dir := filepath.Dir(name)
	for _, sub := range parents(dir) {
		exec.Command("mmd", "-D", "s", "-i", img, "::/"+sub).Run() // exists: fine
	}
	tmp, err := os.CreateTemp("", "bootdisk-file")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		return err
	}
	tmp.Close()
	if out, err := exec.Command("mcopy", "-o", "-i", img, tmp.Name(), "::/"+name).CombinedOutput(); err != nil {
		return fmt.Errorf("mcopy %s: %w\n%s", name, err, out)
	}
	return nil
}

// parents returns "a", "a/b", "a/b/c" for "a/b/c".
func parents(dir string) []string {
	if dir == "." || dir == "" || dir == "/" {
		return nil
	}
	return append(parents(filepath.Dir(dir)), dir)
}
