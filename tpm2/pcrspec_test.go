package tpm2

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePCRSpec(t *testing.T) {
	zero := strings.Repeat("00", 32)
	ones := strings.Repeat("11", 20)
	for _, tc := range []struct {
		in      string
		pcrs    []int
		bank    Bank
		literal map[int]string
		str     string
	}{
		{"", []int{}, 0, nil, ""},
		{"7", []int{7}, 0, nil, "7"},
		{"11+7,7", []int{7, 11}, 0, nil, "7+11"},
		{"7+15:sha256=" + zero, []int{7, 15}, SHA256, map[int]string{15: zero}, "7+15:sha256=" + zero},
		{"15:SHA256=0x" + zero, []int{15}, SHA256, map[int]string{15: zero}, "15:sha256=" + zero},
		{"secure-boot-policy+system-identity:sha1=" + ones, []int{7, 15}, SHA1, map[int]string{15: ones}, "7+15:sha1=" + ones},
		{"kernel-boot", []int{11}, 0, nil, "11"},
	} {
		spec, err := ParsePCRSpec(tc.in)
		if err != nil {
			t.Errorf("ParsePCRSpec(%q) = %v", tc.in, err)
			continue
		}
		lit := map[int]string{}
		for p, v := range spec.Values {
			lit[p] = hex.EncodeToString(v)
		}
		if len(lit) == 0 {
			lit = nil
		}
		if diff := cmp.Diff(tc.pcrs, spec.PCRs); diff != "" || spec.Bank != tc.bank || !cmp.Equal(lit, tc.literal) {
			t.Errorf("ParsePCRSpec(%q) = %v bank %v values %v, want %v bank %v values %v", tc.in, spec.PCRs, spec.Bank, lit, tc.pcrs, tc.bank, tc.literal)
		}
		if got := spec.String(); got != tc.str {
			t.Errorf("ParsePCRSpec(%q).String() = %q, want %q", tc.in, got, tc.str)
		}
	}
}

func TestParsePCRSpecErrors(t *testing.T) {
	zero := strings.Repeat("00", 32)
	for _, tc := range []struct{ in, want string }{
		{"24", `"24" is not a PCR index 0..23 or name`},
		{"-1", `"-1" is not a PCR index`},
		{"bogus", `"bogus" is not a PCR index`},
		{"15:" + zero, "is not BANK=HEX"},
		{"15:md5=00", `parse PCR bank "md5"`},
		{"15:sha256=zz", `value "zz" is not hex`},
		{"15:sha256=00", "value is 1 bytes, want 32 for bank sha256"},
		{"7:sha1=" + strings.Repeat("0", 40) + "+15:sha256=" + zero, "bank sha256 differs from sha1"},
		{"15:sha256=" + zero + "+15:sha256=" + strings.Repeat("1", 64), "PCR 15: two different values"},
	} {
		if _, err := ParsePCRSpec(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePCRSpec(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParsePCRSpec(f *testing.F) {
	f.Add("7+15:sha256=" + strings.Repeat("0", 64))
	f.Add("secure-boot-policy,11")
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := ParsePCRSpec(s)
		if err != nil {
			return
		}
		again, err := ParsePCRSpec(spec.String())
		if err != nil || !cmp.Equal(spec, again) {
			t.Fatalf("ParsePCRSpec(%q) = %+v; reparsing %q = %+v, %v", s, spec, spec.String(), again, err)
		}
	})
}
