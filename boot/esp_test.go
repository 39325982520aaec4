package boot

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
)

// fakeBlock makes a sysfs class/block tree and a /dev with the disk image
// img as "vda" (partitions 1-3) and a blank disk "vdb", plus a loop device.
func fakeBlock(t *testing.T, img string) (sysBlock, dev string) {
	t.Helper()
	root := t.TempDir()
	sysBlock, dev = filepath.Join(root, "sys/class/block"), filepath.Join(root, "dev")
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"vda/size": itoa64(fi.Size() / 512), "vda/queue/logical_block_size": "512\n",
		"vda/vda1/partition": "1\n", "vda/vda2/partition": "2\n", "vda/vda3/partition": "3\n",
		"vdb/size": "2048\n", "loop0/size": "2048\n",
	}
	writeFiles(t, sysBlock, files)
	writeFiles(t, dev, map[string]string{"vdb": strings.Repeat("\x00", 2048*512), "loop0": "x"})
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dev, "vda"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return sysBlock, dev
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) + "\n" }

func TestScanPartitions(t *testing.T) {
	sysBlock, dev := fakeBlock(t, sfdiskImage(t, gptScript))
	parts, errs := scanPartitions(sysBlock, dev)
	if len(parts) != 3 {
		t.Fatalf("scanPartitions = %+v, want 3 partitions", parts)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "vdb: GPT header at LBA 1: no EFI PART signature") {
		t.Errorf("scan errors = %v, want vdb without a GPT (and loop0 skipped)", errs)
	}
	p := parts[2]
	if p.Device != filepath.Join(dev, "vda3") || p.Disk != filepath.Join(dev, "vda") || p.Type != TypeLUKS || p.Name != "InitOS LUKS" {
		t.Errorf("partition 3 = %+v", p)
	}
	if luks := luksPartitions(parts); len(luks) != 1 || luks[0].Number != 3 {
		t.Errorf("luksPartitions = %+v", luks)
	}
}

func TestChooseESP(t *testing.T) {
	parts := []Partition{
		{GPTPartition: GPTPartition{Type: TypeLUKS, UUID: "u0"}},
		{GPTPartition: GPTPartition{Type: TypeESP, UUID: "u1", Name: "EFI"}},
		{GPTPartition: GPTPartition{Type: TypeESP, UUID: "u2", Name: NameESPB}},
		{GPTPartition: GPTPartition{Type: TypeESP, UUID: "u3", Name: NameESPA}},
	}
	tests := []struct {
		parts    []Partition
		partUUID string
		want     string
	}{
		{parts, "u3", "u3"},   // the stub said so
		{parts, "u1", "u1"},   // even an ESP without an InitOS name
		{parts, "nope", ""},   // not (yet) there: never another one
		{parts, "", "u2"},     // first InitOS-named ESP
		{parts[:2], "", "u1"}, // else the first ESP
		{parts[:1], "", ""},   // no ESP
	}
	for _, tt := range tests {
		got := chooseESP(tt.parts, tt.partUUID)
		if (got == nil && tt.want != "") || (got != nil && got.UUID != tt.want) {
			t.Errorf("chooseESP(%d parts, %q) = %+v, want %q", len(tt.parts), tt.partUUID, got, tt.want)
		}
	}
	for name, want := range map[string]string{NameESPA: "a", NameESPB: "b", "EFI": "", "InitOS ESP C": ""} {
		if got := slotOf(name); got != want {
			t.Errorf("slotOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// efiString encodes an efivarfs file: attributes, UTF-16LE, NUL.
func efiString(s string) []byte {
	b := []byte{7, 0, 0, 0}
	for _, c := range utf16.Encode([]rune(s + "\x00")) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

func TestLoaderDevicePartUUID(t *testing.T) {
	dir := t.TempDir()
	if got, err := loaderDevicePartUUID(dir); got != "" || err != nil {
		t.Errorf("loaderDevicePartUUID(absent) = %q, %v, want empty", got, err)
	}
	p := filepath.Join(dir, "LoaderDevicePartUUID-"+loaderVendor)
	os.WriteFile(p, efiString("0F6B4B8E-9D35-4F4A-8E0B-6A2D3E4F5A61"), 0o644)
	if got, err := loaderDevicePartUUID(dir); got != "0f6b4b8e-9d35-4f4a-8e0b-6a2d3e4f5a61" || err != nil {
		t.Errorf("loaderDevicePartUUID = %q, %v, want the lowercase GUID", got, err)
	}
	for _, bad := range [][]byte{{1, 2}, efiString("not-a-guid"), append(efiString("x"), 0)} {
		os.WriteFile(p, bad, 0o644)
		if _, err := loaderDevicePartUUID(dir); err == nil || !strings.Contains(err.Error(), "LoaderDevicePartUUID") {
			t.Errorf("loaderDevicePartUUID(%q) = %v, want an error", bad, err)
		}
	}
}
