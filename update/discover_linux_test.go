package update

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"initos/internal/testenv"
)

// gptDisk writes a sparse disk image with the InitOS layout: ESP A, ESP B,
// LUKS, each sizeMiB.
func gptDisk(t *testing.T, path string, sizeMiB int64) {
	t.Helper()
	total := (3*sizeMiB + 2) << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	must(t, f.Truncate(total))
	tab := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true}
	start := uint64(2048)
	for i, p := range []struct{ name, typ, guid string }{
		{NameESPA, string(gpt.EFISystemPartition), partA},
		{NameESPB, string(gpt.EFISystemPartition), partB},
		{"InitOS LUKS", "CA7D7CCB-63ED-4C53-861C-1742536059CC", "6f3c2d1e-0000-4000-8000-0000000000cc"},
	} {
		n := uint64(sizeMiB << 20 / 512)
		tab.Partitions = append(tab.Partitions, &gpt.Partition{Index: i + 1, Start: start, End: start + n - 1, Size: n * 512,
			Type: gpt.Type(p.typ), Name: p.name, GUID: p.guid})
		start += n
	}
	must(t, tab.Write(f, total))
}

// TestFindESPs reads the GPT of a disk image laid out like sysfs and /dev
// (the disk node a regular file), and checks the ESPs against sgdisk's
// reading of the same table.
func TestFindESPs(t *testing.T) {
	root := t.TempDir()
	sys, dev := filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for _, d := range []string{"class/block/vdz/queue", "class/block/vdz/vdz1", "class/block/vdz/vdz2", "class/block/vdz/vdz3", "class/block/loop0"} {
		must(t, os.MkdirAll(filepath.Join(sys, d), 0o755))
	}
	os.WriteFile(filepath.Join(sys, "class/block/vdz/queue/logical_block_size"), []byte("512\n"), 0o644)
	for i := 1; i <= 3; i++ {
		os.WriteFile(filepath.Join(sys, "class/block/vdz", "vdz"+string(rune('0'+i)), "partition"), []byte(string(rune('0'+i))+"\n"), 0o644)
	}
	os.MkdirAll(dev, 0o755)
	gptDisk(t, filepath.Join(dev, "vdz"), 8)
	esps, err := FindESPs(sys, dev)
	if err != nil || len(esps) != 2 {
		t.Fatalf("FindESPs = %+v, %v, want two ESPs", esps, err)
	}
	a := esps[0]
	if a.Slot != "a" || a.Device != filepath.Join(dev, "vdz1") || a.Number != 1 || a.PartUUID != partA || a.Start != 2048 || a.Size != 16384 {
		t.Errorf("ESP A = %+v", a)
	}
	if esps[1].Slot != "b" || esps[1].Start != 2048+16384 {
		t.Errorf("ESP B = %+v", esps[1])
	}
	sgdisk := testenv.Tool(t, "sgdisk")
	out, err := exec.Command(sgdisk, "-i", "2", filepath.Join(dev, "vdz")).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk: %v\n%s", err, out)
	}
	for _, want := range []string{"Partition unique GUID: " + strings.ToUpper(partB), "First sector: 18432", "Partition name: 'InitOS ESP B'", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sgdisk -i 2 does not say %q:\n%s", want, out)
		}
	}
}
