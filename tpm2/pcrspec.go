package tpm2

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// PCRSpec is a parsed --tpm2-pcrs argument: the PCRs a policy binds by
// value, some of them to literal values given on the command line instead
// of the TPM's current ones.
type PCRSpec struct {
	PCRs   []int          // sorted, no duplicates
	Bank   Bank           // the bank named by the literal values; 0 if none
	Values map[int][]byte // literal values, keyed by PCR; nil if none
}

// ParsePCRSpec parses systemd-cryptenroll's --tpm2-pcrs syntax (systemd
// 255+): PCR entries separated by "+" or ",", each an index 0..23,
// optionally followed by ":BANK=HEX" giving the value the policy binds
// that PCR to instead of its current value, e.g.
// "7+15:sha256=0000000000000000000000000000000000000000000000000000000000000000".
// All literal values must name the same bank and have its digest size.
// The empty string binds no PCR.
func ParsePCRSpec(s string) (PCRSpec, error) {
	spec := PCRSpec{PCRs: []int{}}
	if s == "" {
		return spec, nil
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == ',' }) {
		if err := spec.add(strings.TrimSpace(f)); err != nil {
			return PCRSpec{}, fmt.Errorf("parse PCR list %q: %w", s, err)
		}
	}
	slices.Sort(spec.PCRs)
	spec.PCRs = slices.Compact(spec.PCRs)
	return spec, nil
}

// pcrNames are systemd's names for PCRs (tpm2_pcr_index_table), which
// --tpm2-pcrs accepts instead of indexes since systemd 254.
var pcrNames = map[string]int{
	"platform-code": 0, "platform-config": 1, "external-code": 2, "external-config": 3,
	"boot-loader-code": 4, "boot-loader-config": 5, "host-platform": 6, "secure-boot-policy": 7,
	"kernel-initrd": 9, "ima": 10, "kernel-boot": 11, "kernel-config": 12, "sysexts": 13,
	"shim-policy": 14, "system-identity": 15, "debug": 16, "application-support": 23,
}

// parsePCRIndex parses a PCR index 0..23 or one of systemd's PCR names.
func parsePCRIndex(s string) (int, error) {
	if n, ok := pcrNames[s]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= NumPCRs {
		return 0, fmt.Errorf("%q is not a PCR index 0..%d or name", s, NumPCRs-1)
	}
	return n, nil
}

// add parses one "INDEX[:BANK=HEX]" entry.
func (spec *PCRSpec) add(f string) error {
	idx, lit, hasValue := strings.Cut(f, ":")
	n, err := parsePCRIndex(idx)
	if err != nil {
		return err
	}
	spec.PCRs = append(spec.PCRs, n)
	if !hasValue {
		return nil
	}
	bankName, value, ok := strings.Cut(lit, "=")
	if !ok {
		return fmt.Errorf("PCR %d: value %q is not BANK=HEX", n, lit)
	}
	bank, err := ParseBank(bankName)
	if err != nil {
		return fmt.Errorf("PCR %d: %w", n, err)
	}
	if spec.Bank != 0 && spec.Bank != bank {
		return fmt.Errorf("PCR %d: bank %s differs from %s of the other values", n, BankName(bank), BankName(spec.Bank))
	}
	v, err := parsePCRValue(bank, value)
	if err != nil {
		return fmt.Errorf("PCR %d: %w", n, err)
	}
	if old, dup := spec.Values[n]; dup && string(old) != string(v) {
		return fmt.Errorf("PCR %d: two different values", n)
	}
	if spec.Values == nil {
		spec.Values = map[int][]byte{}
	}
	spec.Bank, spec.Values[n] = bank, v
	return nil
}

func parsePCRValue(bank Bank, s string) ([]byte, error) {
	h, err := bankHash(bank)
	if err != nil {
		return nil, err
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	v, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("value %q is not hex", s)
	}
	if len(v) != h.Size() {
		return nil, fmt.Errorf("value is %d bytes, want %d for bank %s", len(v), h.Size(), BankName(bank))
	}
	return v, nil
}

// String formats spec in the syntax ParsePCRSpec reads ("7+15:sha256=00…").
func (spec PCRSpec) String() string {
	s := make([]string, len(spec.PCRs))
	for i, p := range spec.PCRs {
		s[i] = strconv.Itoa(p)
		if v, ok := spec.Values[p]; ok {
			s[i] += ":" + BankName(spec.Bank) + "=" + hex.EncodeToString(v)
		}
	}
	return strings.Join(s, "+")
}

// Literal returns the PCRs given literal values, sorted.
func (spec PCRSpec) Literal() []int {
	return slices.Sorted(maps.Keys(spec.Values))
}
