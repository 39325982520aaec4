package eventlog

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// typeNames are the event types of PFP 10.4.1.
var typeNames = map[uint32]string{
	0x00000000: "EV_PREBOOT_CERT", 0x00000001: "EV_POST_CODE", 0x00000003: "EV_NO_ACTION",
	0x00000004: "EV_SEPARATOR", 0x00000005: "EV_ACTION", 0x00000006: "EV_EVENT_TAG",
	0x00000007: "EV_S_CRTM_CONTENTS", 0x00000008: "EV_S_CRTM_VERSION", 0x00000009: "EV_CPU_MICROCODE",
	0x0000000A: "EV_PLATFORM_CONFIG_FLAGS", 0x0000000B: "EV_TABLE_OF_DEVICES", 0x0000000C: "EV_COMPACT_HASH",
	0x0000000D: "EV_IPL", 0x0000000E: "EV_IPL_PARTITION_DATA", 0x0000000F: "EV_NONHOST_CODE",
	0x00000010: "EV_NONHOST_CONFIG", 0x00000011: "EV_NONHOST_INFO", 0x00000012: "EV_OMIT_BOOT_DEVICE_EVENTS",
	0x80000001: "EV_EFI_VARIABLE_DRIVER_CONFIG", 0x80000002: "EV_EFI_VARIABLE_BOOT",
	0x80000003: "EV_EFI_BOOT_SERVICES_APPLICATION", 0x80000004: "EV_EFI_BOOT_SERVICES_DRIVER",
	0x80000005: "EV_EFI_RUNTIME_SERVICES_DRIVER", 0x80000006: "EV_EFI_GPT_EVENT", 0x80000007: "EV_EFI_ACTION",
	0x80000008: "EV_EFI_PLATFORM_FIRMWARE_BLOB", 0x80000009: "EV_EFI_HANDOFF_TABLES",
	0x8000000A: "EV_EFI_PLATFORM_FIRMWARE_BLOB2", 0x8000000B: "EV_EFI_HANDOFF_TABLES2",
	0x8000000C: "EV_EFI_VARIABLE_BOOT2", 0x800000E0: "EV_EFI_VARIABLE_AUTHORITY",
	0x800000E1: "EV_EFI_SPDM_FIRMWARE_BLOB", 0x800000E2: "EV_EFI_SPDM_FIRMWARE_CONFIG",
}

// TypeName names an event type ("EV_SEPARATOR"), or "0x%08x".
func TypeName(t uint32) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%08x", t)
}

// Describe returns a short text for the event data: the variable name of
// EFI variable events, the text of string events, else the data size.
func (e Event) Describe() string {
	switch e.Type {
	case 0x80000001, 0x80000002, 0x8000000C, 0x800000E0:
		if name, ok := variableName(e.Data); ok {
			return name
		}
	case 0x00000005, 0x0000000D, 0x80000007, 0x00000008:
		if s, ok := printable(e.Data); ok {
			return s
		}
	}
	return fmt.Sprintf("%d bytes", len(e.Data))
}

// variableName decodes UEFI_VARIABLE_DATA: VariableName GUID, name length
// (UTF-16 units), data length, the UTF-16LE name, the data.
func variableName(b []byte) (string, bool) {
	if len(b) < 32 {
		return "", false
	}
	n := binary.LittleEndian.Uint64(b[16:24])
	if n > uint64(len(b)-32)/2 {
		return "", false
	}
	u := make([]uint16, n)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[32+2*i:])
	}
	return string(utf16.Decode(u)), true
}

// printable returns b as text when it is printable ASCII (a trailing NUL
// allowed), at most 80 characters.
func printable(b []byte) (string, bool) {
	s := strings.TrimRight(string(b), "\x00")
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return "", false
		}
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s, s != ""
}
