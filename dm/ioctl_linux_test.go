package dm

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestABISizes pins the ABI struct sizes to <linux/dm-ioctl.h>.
func TestABISizes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"struct dm_ioctl", headerSize, unix.SizeofDmIoctl},
		{"struct dm_ioctl (C)", headerSize, 312},
		{"struct dm_target_spec", specSize, unix.SizeofDmTargetSpec},
		{"struct dm_target_spec (C)", specSize, 40},
		{"struct dm_target_msg", msgSize, 8},
		{"offsetof(struct dm_name_list, name)", nameOffset, 12},
	} {
		if tt.got != tt.want {
			t.Errorf("size of %s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestMarshalTable(t *testing.T) {
	payload, n, err := marshalTable([]Target{
		Linear{Length: 8, Device: "/dev/vda", Offset: 0},
		Spec{Start: 8, Length: 16, Kind: "zero"},
	})
	if err != nil {
		t.Fatalf("marshalTable: %v", err)
	}
	if n != 2 {
		t.Errorf("marshalTable count = %d, want 2", n)
	}
	// Records: spec (40) + "/dev/vda 0\x00" (11) padded to 56; spec + "\x00" padded to 48.
	if len(payload) != 56+48 {
		t.Fatalf("len(payload) = %d, want %d", len(payload), 56+48)
	}
	var s unix.DmTargetSpec
	copy(asBytes(&s), payload)
	want := unix.DmTargetSpec{Sector_start: 0, Length: 8, Next: 56}
	copy(want.Target_type[:], "linear")
	if s != want {
		t.Errorf("first spec = %+v, want %+v", s, want)
	}
	if got := cString(payload[specSize:]); got != "/dev/vda 0" {
		t.Errorf("first params = %q, want %q", got, "/dev/vda 0")
	}
	copy(asBytes(&s), payload[56:])
	if s.Sector_start != 8 || s.Length != 16 || cString(s.Target_type[:]) != "zero" {
		t.Errorf("second spec = %+v, want start 8 length 16 type zero", s)
	}
}

func TestMarshalTableErrors(t *testing.T) {
	tests := []struct {
		name    string
		targets []Target
		want    string
	}{
		{"empty", nil, "no targets"},
		{"nil", []Target{nil}, "target 0 is nil"},
		{"gap", []Target{Spec{Start: 0, Length: 8, Kind: "zero"}, Spec{Start: 9, Length: 1, Kind: "zero"}}, "starts at sector 9, want 8"},
		{"zero length", []Target{Linear{Device: "a"}}, "length 0"},
		{"bad params", []Target{Linear{Length: 1}}, "target 0 (linear): linear device is empty"},
		{"NUL", []Target{Spec{Length: 1, Kind: "zero", Args: "a\x00"}}, "contain NUL"},
	}
	for _, tt := range tests {
		if _, _, err := marshalTable(tt.targets); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: marshalTable error = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// statusReply builds a DM_TABLE_STATUS data area the way the kernel does:
// next is the offset of the following spec from the data area's start.
func statusReply(specs []Spec) []byte {
	var out []byte
	for _, sp := range specs {
		start := len(out)
		entry := alignUp(specSize + len(sp.Args) + 1)
		s := unix.DmTargetSpec{Sector_start: sp.Start, Length: sp.Length, Next: uint32(start + entry)}
		copy(s.Target_type[:], sp.Kind)
		rec := make([]byte, entry)
		copy(rec, asBytes(&s))
		copy(rec[specSize:], sp.Args)
		out = append(out, rec...)
	}
	return out
}

func TestParseSpecs(t *testing.T) {
	want := []Spec{{0, 2048, "verity", "V"}, {2048, 8, "crypt", ""}, {2056, 1, "linear", "7:0 0"}}
	got, err := parseSpecs(statusReply(want), uint32(len(want)))
	if err != nil {
		t.Fatalf("parseSpecs: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSpecs diff (-want +got):\n%s", diff)
	}
	if _, err := parseSpecs(statusReply(want)[:50], 3); err == nil {
		t.Errorf("parseSpecs(truncated) = nil error, want one")
	}
}

// nameListReply builds a DM_LIST_DEVICES data area as Linux 6.1 does.
func nameListReply(devs []Device) []byte {
	if len(devs) == 0 {
		return make([]byte, 16)
	}
	var out []byte
	for i, d := range devs {
		rec := make([]byte, nameOffset+len(d.Name)+1)
		binary.NativeEndian.PutUint64(rec, unix.Mkdev(d.Major, d.Minor))
		copy(rec[nameOffset:], d.Name)
		rec = append(rec, make([]byte, alignUp(len(rec))-len(rec))...)
		flags := uint32(unix.DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID)
		if d.UUID != "" {
			flags = unix.DM_NAME_LIST_FLAG_HAS_UUID
		}
		rec = binary.NativeEndian.AppendUint32(rec, d.EventNr)
		rec = binary.NativeEndian.AppendUint32(rec, flags)
		if d.UUID != "" {
			rec = append(append(rec, d.UUID...), 0)
		}
		rec = append(rec, make([]byte, alignUp(len(rec))-len(rec))...)
		if i+1 < len(devs) {
			binary.NativeEndian.PutUint32(rec[8:], uint32(len(rec)))
		}
		out = append(out, rec...)
	}
	return out
}

func TestParseNameList(t *testing.T) {
	if got, err := parseNameList(nil); got != nil || err != nil {
		t.Errorf("parseNameList(no data) = %v, %v, want no devices", got, err)
	}
	for _, want := range [][]Device{
		nil,
		{{Name: "root", Major: 254, Minor: 0}},
		{{Name: "a", UUID: "CRYPT-LUKS2-abc-a", Major: 254, Minor: 1, EventNr: 3}, {Name: "verity-usr", Major: 254, Minor: 300}},
	} {
		got, err := parseNameList(nameListReply(want))
		if err != nil {
			t.Fatalf("parseNameList: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("parseNameList diff (-want +got):\n%s", diff)
		}
	}
	// A kernel before 5.13 ends each record after the padded name.
	old := make([]byte, 16)
	binary.NativeEndian.PutUint64(old, unix.Mkdev(254, 2))
	copy(old[nameOffset:], "x")
	got, err := parseNameList(old)
	if err != nil || len(got) != 1 || got[0].Name != "x" || got[0].Minor != 2 {
		t.Errorf("parseNameList(old) = %+v, %v, want one device x 254:2", got, err)
	}
}

func FuzzParseNameList(f *testing.F) {
	f.Add(nameListReply(nil))
	f.Add(nameListReply([]Device{{Name: "a", UUID: "u", Major: 1, Minor: 2}, {Name: "b"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseNameList(data)
	})
}

func FuzzParseSpecs(f *testing.F) {
	f.Add(statusReply([]Spec{{0, 8, "verity", "V"}, {8, 8, "zero", ""}}), uint32(2))
	f.Fuzz(func(t *testing.T, data []byte, n uint32) {
		specs, err := parseSpecs(data, n%64)
		if err == nil && len(specs) != int(n%64) {
			t.Errorf("parseSpecs returned %d specs, want %d", len(specs), n%64)
		}
	})
}

func FuzzParseTable(f *testing.F) {
	f.Add("0 100 linear /dev/vda 0\n100 8 zero\n")
	f.Fuzz(func(t *testing.T, text string) {
		specs, err := ParseTable(text)
		if err != nil {
			return
		}
		var lines []string
		for _, s := range specs {
			lines = append(lines, s.String())
		}
		again, err := ParseTable(strings.Join(lines, "\n"))
		if err != nil {
			t.Fatalf("ParseTable(rendered) error: %v", err)
		}
		if diff := cmp.Diff(specs, again); diff != "" {
			t.Errorf("re-parse diff (-first +second):\n%s", diff)
		}
	})
}

func TestErrnoNotExist(t *testing.T) {
	c := &Control{}
	err := c.pathErr(request{op: "dm info", cmdName: "DM_DEV_STATUS", name: "nope"}, unix.ENXIO)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, unix.ENXIO) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist / ENXIO) = false, want true", err)
	}
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != "nope" {
		t.Errorf("error %v is not a *os.PathError naming the device", err)
	}
	if want := "dm info nope: ioctl(DM_DEV_STATUS): no such device or address"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if errors.Is(c.pathErr(request{}, unix.EBUSY), fs.ErrNotExist) {
		t.Errorf("EBUSY matches fs.ErrNotExist, want not")
	}
}
