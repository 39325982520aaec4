package install

import (
	"bytes"
	"os"
	"testing"
)

// FuzzParseConfig: an install config comes from a USB stick; parsing it
// never panics, and what parses marshals and parses back the same.
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("testdata/install.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"disks":["auto"],"esp_size":1048576000}`))
	f.Add([]byte(`{"esp_size":"-1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		c2 := c.withDefaults()
		_ = c2.validate()
	})
}

// FuzzProbe: Probe reads whatever a disk holds (GPT, MBR, a LUKS2 header
// at the InitOS LUKS partition); it never panics and classifies every
// input.
func FuzzProbe(f *testing.F) {
	disk := testDiskImage(f)
	f.Add(disk[:64<<10])
	f.Add([]byte("LUKS\xba\xbe"))
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 2<<20 {
			return
		}
		img := make([]byte, 2<<20)
		copy(img, b)
		c, err := Probe(bytes.NewReader(img), int64(len(img)), 512)
		if err == nil && c.Kind == "" {
			t.Errorf("Probe() returned no kind")
		}
	})
}

// testDiskImage is the first part of an InitOS disk, for seeds.
func testDiskImage(f *testing.F) []byte {
	dir := f.TempDir()
	p := dir + "/d.img"
	fl, err := os.Create(p)
	if err != nil {
		f.Fatal(err)
	}
	defer fl.Close()
	fl.Truncate(4 << 20)
	l := &Layout{SectorSize: 512, DiskGUID: "0B7F9A0C-1111-4222-8333-444455556666", Partitions: []Partition{
		{Number: 1, Name: NameESPA, Type: TypeESP, GUID: "5F2D7E4A-0000-4000-8000-000000000001", Start: 34, Sectors: 100},
		{Number: 3, Name: NameLUKS, Type: TypeLUKS, GUID: "5F2D7E4A-0000-4000-8000-000000000003", Start: 200, Sectors: 7000}}}
	if err := l.toGPT(512).Write(fl, 4<<20); err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	return b
}
