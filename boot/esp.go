package boot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// loaderVendor is systemd-boot's / systemd-stub's vendor GUID of the
// LoaderDevicePartUUID variable (Boot Loader Interface).
const loaderVendor = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// loaderDevicePartUUID reads the PARTUUID of the partition systemd-stub
// was loaded from, from efivarfs: 4 attribute bytes, then the GUID in
// UTF-16LE, NUL-terminated. "" when the variable is absent.
func loaderDevicePartUUID(efivars string) (string, error) {
	b, err := os.ReadFile(filepath.Join(efivars, "LoaderDevicePartUUID-"+loaderVendor))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if len(b) < 4 || len(b)%2 != 0 || len(b) > 4+2*64 {
		return "", fmt.Errorf("LoaderDevicePartUUID: %d bytes", len(b))
	}
	u := make([]uint16, 0, (len(b)-4)/2)
	for i := 4; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	s := strings.ToLower(string(utf16.Decode(u)))
	if !isGUID(s) {
		return "", fmt.Errorf("LoaderDevicePartUUID: %q is not a GUID", s)
	}
	return s, nil
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// chooseESP picks the ESP among parts: the partition with PARTUUID
// partUUID when the stub named one, else the first ESP named like an
// InitOS slot, else the first ESP. nil when none fits (yet).
func chooseESP(parts []Partition, partUUID string) *Partition {
	var first, named *Partition
	for i := range parts {
		p := &parts[i]
		if partUUID != "" {
			if p.UUID == partUUID {
				return p
			}
			continue
		}
		if p.Type != TypeESP {
			continue
		}
		if first == nil {
			first = p
		}
		if named == nil && slotOf(p.Name) != "" {
			named = p
		}
	}
	if named != nil {
		return named
	}
	return first
}

// slotOf returns the A/B slot of an ESP from its GPT name, "" if none.
func slotOf(name string) string {
	switch name {
	case NameESPA:
		return "a"
	case NameESPB:
		return "b"
	}
	return ""
}
