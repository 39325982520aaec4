package update

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/go-tpm/tpm2/transport"

	"initos/efivar"
	"initos/tpm2"
)

// Paths are where Discover looks; the zero value means a booted host's.
type Paths struct {
	Sys      string // sysfs, default /sys
	Dev      string // device nodes, default /dev
	Efivars  string // efivarfs, default /sys/firmware/efi/efivars
	MountDir string // where ESPs are mounted, default /run/initos/update
	TPM      string // TPM device, default /dev/tpmrm0 (or /dev/tpm0)
}

func (p Paths) withDefaults() Paths {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&p.Sys, "/sys")
	def(&p.Dev, "/dev")
	def(&p.Efivars, efivar.DefaultEfivarfs)
	def(&p.MountDir, "/run/initos/update")
	return p
}

// Discover builds the System of the running host: its efivarfs, the
// InitOS ESPs of every disk (read from each disk's GPT: type EFI System,
// names "InitOS ESP A"/"InitOS ESP B"), the kernel's vfat to mount them,
// and the TPM when there is one.
func Discover(p Paths) (*System, error) {
	p = p.withDefaults()
	vars, err := efivar.OpenEfivarfs(p.Efivars)
	if err != nil {
		return nil, err
	}
	esps, err := FindESPs(p.Sys, p.Dev)
	if err != nil {
		return nil, err
	}
	s := &System{Vars: vars, ESPs: esps, Mounter: &KernelMounter{Dir: p.MountDir}}
	if dev := tpmDevice(p); dev != "" {
		s.OpenTPM = func() (transport.TPMCloser, error) { return tpm2.Open(tpm2.Device{Path: dev}) }
	}
	return s, nil
}

// tpmDevice returns the TPM device node, "" when there is none.
func tpmDevice(p Paths) string {
	cands := []string{p.TPM}
	if p.TPM == "" {
		cands = []string{filepath.Join(p.Dev, "tpmrm0"), filepath.Join(p.Dev, "tpm0")}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// FindESPs reads the GPT of every whole disk in sysfs and returns the
// InitOS ESPs, by disk name then slot.
func FindESPs(sys, dev string) ([]ESP, error) {
	ents, err := os.ReadDir(filepath.Join(sys, "class/block"))
	if err != nil {
		return nil, fmt.Errorf("find the ESPs: %w", err)
	}
	var out []ESP
	var errs []error
	for _, e := range ents {
		name := e.Name()
		base := filepath.Join(sys, "class/block", name)
		if exists(filepath.Join(base, "partition")) || skipDisk(name) {
			continue
		}
		esps, err := diskESPs(base, filepath.Join(dev, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, esps...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Disk != out[j].Disk {
			return out[i].Disk < out[j].Disk
		}
		return out[i].Slot < out[j].Slot
	})
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("find the ESPs: %w", errors.Join(errs...))
	}
	return out, nil
}

// skipDisk leaves out devices that hold no GPT of ours.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "sr", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// diskESPs reads one disk's GPT.
func diskESPs(sysDir, node string) ([]ESP, error) {
	ss := 512
	if b, err := os.ReadFile(filepath.Join(sysDir, "queue/logical_block_size")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			ss = n
		}
	}
	f, err := os.Open(node)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := gpt.Read(f, ss, ss)
	if err != nil {
		return nil, nil // no GPT: not an InitOS disk
	}
	var out []ESP
	for _, p := range t.Partitions {
		slot := SlotOfName(p.Name)
		if slot == "" || !strings.EqualFold(string(p.Type), string(gpt.EFISystemPartition)) {
			continue
		}
		part, err := partitionNode(sysDir, node, p.Index)
		if err != nil {
			return nil, err
		}
		out = append(out, ESP{Slot: slot, Disk: node, Device: part, Number: p.Index,
			PartUUID: strings.ToLower(p.GUID), Start: p.Start, Size: p.End - p.Start + 1})
	}
	return out, nil
}

// partitionNode finds partition n of the disk in sysfs (vda1, nvme0n1p1).
func partitionNode(sysDir, node string, n int) (string, error) {
	ents, err := os.ReadDir(sysDir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(sysDir, e.Name(), "partition"))
		if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(n) {
			return filepath.Join(filepath.Dir(node), e.Name()), nil
		}
	}
	return "", fmt.Errorf("%s: partition %d is in the GPT but not known to the kernel (reread the partition table)", node, n)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
