package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"
)

// LoadOptionActive is LOAD_OPTION_ACTIVE.
const LoadOptionActive = 0x00000001

// ErrLoadOption is wrapped by errors about malformed load options.
var ErrLoadOption = errors.New("malformed EFI_LOAD_OPTION")

// LoadOption is an EFI_LOAD_OPTION (UEFI 2.10, 3.1.3): the contents of a
// Boot#### variable.
type LoadOption struct {
	Attributes   uint32
	Description  string
	FilePath     DevicePath
	OptionalData []byte
}

// MarshalBinary encodes the load option.
func (o *LoadOption) MarshalBinary() ([]byte, error) {
	fp, err := AppendDevicePath(nil, o.FilePath)
	if err != nil {
		return nil, fmt.Errorf("encode load option: %w", err)
	}
	if len(fp) > 0xffff {
		return nil, fmt.Errorf("encode load option: device path of %d bytes", len(fp))
	}
	b := binary.LittleEndian.AppendUint32(nil, o.Attributes)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(fp)))
	for _, u := range utf16.Encode([]rune(o.Description + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	b = append(b, fp...)
	return append(b, o.OptionalData...), nil
}

// UnmarshalBinary decodes a load option.
func (o *LoadOption) UnmarshalBinary(b []byte) error {
	if len(b) < 6 {
		return fmt.Errorf("%w: %d bytes, shorter than the fixed header", ErrLoadOption, len(b))
	}
	attrs := binary.LittleEndian.Uint32(b)
	fpLen := int(binary.LittleEndian.Uint16(b[4:]))
	end := -1
	for i := 6; i+1 < len(b); i += 2 {
		if b[i] == 0 && b[i+1] == 0 {
			end = i
			break
		}
	}
	if end < 0 {
		return fmt.Errorf("%w: description has no NUL terminator", ErrLoadOption)
	}
	fpStart := end + 2
	if fpStart+fpLen > len(b) {
		return fmt.Errorf("%w: FilePathListLength %d runs past the %d-byte option", ErrLoadOption, fpLen, len(b))
	}
	fp, err := ParseDevicePath(b[fpStart : fpStart+fpLen])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLoadOption, err)
	}
	*o = LoadOption{Attributes: attrs, Description: decodeUTF16Z(b[6 : end+2]), FilePath: fp, OptionalData: b[fpStart+fpLen:]}
	return nil
}
