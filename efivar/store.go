package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound is returned for a variable that does not exist.
var ErrNotFound = fs.ErrNotExist

// Store reads and writes UEFI variables.
type Store interface {
	// Get returns a variable's attributes and data.
	Get(name string, guid GUID) (attrs uint32, data []byte, err error)
	// Set writes a variable. For authenticated variables data is the
	// signed payload (EFI_VARIABLE_AUTHENTICATION_2 + new contents).
	Set(name string, guid GUID, attrs uint32, data []byte) error
	// Delete removes a variable.
	Delete(name string, guid GUID) error
	// List returns the variables present, sorted by name then GUID.
	List() ([]VarID, error)
}

// VarID names one variable.
type VarID struct {
	Name string
	GUID GUID
}

// Dir is a Store on a directory laid out like efivarfs: a file per
// variable named "Name-GUID" holding the 4-byte little-endian attributes
// followed by the data.
type Dir struct {
	Path string
	// Efivarfs selects the kernel's rules: no truncation (the kernel
	// replaces the variable on each write) and immutable files made
	// writable first. OpenEfivarfs sets it.
	Efivarfs bool
}

// DefaultEfivarfs is where Linux mounts efivarfs.
const DefaultEfivarfs = "/sys/firmware/efi/efivars"

func (d *Dir) path(name string, guid GUID) string {
	return filepath.Join(d.Path, name+"-"+guid.String())
}

// Get implements Store.
func (d *Dir) Get(name string, guid GUID) (uint32, []byte, error) {
	b, err := os.ReadFile(d.path(name, guid))
	if err != nil {
		return 0, nil, fmt.Errorf("read variable %s: %w", name, err)
	}
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("read variable %s: %d bytes, no attributes", name, len(b))
	}
	return binary.LittleEndian.Uint32(b), b[4:], nil
}

// Set implements Store. The attributes and data go out in one write, as
// efivarfs requires.
func (d *Dir) Set(name string, guid GUID, attrs uint32, data []byte) error {
	p := d.path(name, guid)
	if err := makeMutable(p); err != nil {
		return fmt.Errorf("write variable %s: %w", name, err)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if !d.Efivarfs {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		return fmt.Errorf("write variable %s: %w", name, err)
	}
	buf := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(data)), attrs)
	buf = append(buf, data...)
	n, err := f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != len(buf) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(buf))
	}
	if err != nil {
		return fmt.Errorf("write variable %s: %w", name, err)
	}
	return nil
}

// Delete implements Store.
func (d *Dir) Delete(name string, guid GUID) error {
	p := d.path(name, guid)
	if err := makeMutable(p); err != nil {
		return fmt.Errorf("delete variable %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete variable %s: %w", name, err)
	}
	return nil
}

// List implements Store.
func (d *Dir) List() ([]VarID, error) {
	ents, err := os.ReadDir(d.Path)
	if err != nil {
		return nil, fmt.Errorf("list variables: %w", err)
	}
	var ids []VarID
	for _, e := range ents {
		n := e.Name()
		if len(n) < 38 || n[len(n)-37] != '-' {
			continue
		}
		g, err := ParseGUID(n[len(n)-36:])
		if err != nil {
			continue
		}
		ids = append(ids, VarID{Name: n[:len(n)-37], GUID: g})
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Name != ids[j].Name {
			return ids[i].Name < ids[j].Name
		}
		return strings.Compare(ids[i].GUID.String(), ids[j].GUID.String()) < 0
	})
	return ids, nil
}

// GetUint8 reads a one-byte variable such as SecureBoot or SetupMode;
// missing reads as 0.
func GetUint8(s Store, name string, guid GUID) (uint8, error) {
	_, b, err := s.Get(name, guid)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, fmt.Errorf("read variable %s: %d bytes, want 1", name, len(b))
	}
	return b[0], nil
}
