package install

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"initos/efivar"
)

func TestEnsureBootEntries(t *testing.T) {
	s := &efivar.Dir{Path: t.TempDir()}
	l, err := planLayout(4<<30, 512, DefaultESPSize, DefaultMinRootSize, false)
	if err != nil {
		t.Fatal(err)
	}
	d := &PlannedDisk{Disk: &Disk{ID: "virtio-a"}, Layout: l}
	(&Plan{Disks: []*PlannedDisk{d}}).assignGUIDs(randReader)
	// The firmware's own entry, and a stale "InitOS A" of an old install.
	other, _ := efivar.AddBootEntry(s, &efivar.LoadOption{Attributes: efivar.LoadOptionActive, Description: "UEFI Shell",
		FilePath: efivar.DevicePath{efivar.FilePathNode(`\shell.efi`)}})
	stale := loadOption(LabelA, efivar.HardDrive{PartitionNumber: 1, PartitionStart: 2048, PartitionSize: 1,
		PartitionSignature: efivar.MustParseGUID("00000000-0000-4000-8000-000000000001"), PartitionFormat: efivar.PartitionFormatGPT, SignatureType: efivar.SignatureTypeGUID})
	staleNum, _ := efivar.AddBootEntry(s, stale)

	got, err := ensureBootEntries(s, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Label != LabelA || got[1].Label != LabelB || !got[0].Created || !got[1].Created {
		t.Fatalf("ensureBootEntries() = %+v, want new A and B", got)
	}
	order, _ := efivar.BootOrder(s)
	if want := []uint16{got[0].Num, got[1].Num, other}; !slices.Equal(order, want) {
		t.Errorf("BootOrder = %v, want %v", order, want)
	}
	if _, err := efivar.ReadBootEntry(s, staleNum); err == nil && staleNum != got[0].Num && staleNum != got[1].Num {
		t.Errorf("the stale InitOS A entry %04X is still there", staleNum)
	}
	e, _ := efivar.ReadBootEntry(s, got[1].Num)
	want := fmt.Sprintf(`HD(2,GPT,%s,0xfa800,0xfa000)/\EFI\Linux\initos.efi`, strings.ToLower(l.Part(2).GUID))
	if e.FilePath.String() != want {
		t.Errorf("InitOS B device path = %s, want %s", e.FilePath, want)
	}
	// Idempotent: a second call changes nothing.
	again, err := ensureBootEntries(s, d)
	if err != nil || again[0].Created || again[1].Created || again[0].Num != got[0].Num {
		t.Errorf("second ensureBootEntries() = %+v, %v; want the same entries, none created", again, err)
	}
}

func TestPartitionHardDrive(t *testing.T) {
	f := testDisk(t, testDiskSize)
	l := writeInitOSGPT(t, f, testDiskSize, false)
	hd, err := PartitionHardDrive(f.Name(), 2)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Part(2)
	if hd.PartitionNumber != 2 || hd.PartitionStart != p.Start || hd.PartitionSize != p.Sectors || hd.PartitionSignature.String() != strings.ToLower(p.GUID) {
		t.Errorf("PartitionHardDrive(2) = %+v, want partition %+v", hd, p)
	}
	if _, err := PartitionHardDrive(f.Name(), 7); err == nil || !strings.Contains(err.Error(), "has no partition 7") {
		t.Errorf("PartitionHardDrive(7) error = %v", err)
	}
	blank := testDisk(t, 1<<20)
	if _, err := PartitionHardDrive(blank.Name(), 1); err == nil || !strings.Contains(err.Error(), "no GPT partition table") {
		t.Errorf("PartitionHardDrive(blank) error = %v", err)
	}
}
