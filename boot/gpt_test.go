package boot

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"initos/internal/testenv"
)

// gptScript is an sfdisk script: the InitOS layout of one disk.
const gptScript = `label: gpt
label-id: 5D3E1A60-1C5B-4E8B-9E59-3C2D4A1B0F00
first-lba: 2048
start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0F6B4B8E-9D35-4F4A-8E0B-6A2D3E4F5A61, name="InitOS ESP A"
start=6144, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=1F6B4B8E-9D35-4F4A-8E0B-6A2D3E4F5A62, name="InitOS ESP B"
start=10240, size=20480, type=CA7D7CCB-63ED-4C53-861C-1742536059CC, uuid=2F6B4B8E-9D35-4F4A-8E0B-6A2D3E4F5A63, name="InitOS LUKS"
`

// sfdiskImage writes a 16 MiB disk image partitioned by sfdisk (oracle).
func sfdiskImage(t *testing.T, script string) string {
	t.Helper()
	return sfdiskImageSize(t, script, 16<<20)
}

// sfdiskImageSize writes a disk image of size bytes partitioned by sfdisk.
func sfdiskImageSize(t *testing.T, script string, size int64) string {
	t.Helper()
	sfdisk := testenv.Tool(t, "sfdisk")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	cmd := testenvCommand(sfdisk, "--quiet", "--no-reread", "--no-tell-kernel", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	return img
}

func readGPTFile(t *testing.T, img string) ([]GPTPartition, error) {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	return ReadGPT(f, fi.Size(), 512)
}

// TestReadGPTOracle: our reader agrees with sfdisk --json on a table
// sfdisk wrote.
func TestReadGPTOracle(t *testing.T) {
	img := sfdiskImage(t, gptScript)
	got, err := readGPTFile(t, img)
	if err != nil {
		t.Fatalf("ReadGPT = %v", err)
	}
	out, err := testenvCommand("sfdisk", "--json", img).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var dump struct {
		PartitionTable struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start uint64 `json:"start"`
				Size  uint64 `json:"size"`
				Type  string `json:"type"`
				UUID  string `json:"uuid"`
				Name  string `json:"name"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatal(err)
	}
	var want []GPTPartition
	for i, p := range dump.PartitionTable.Partitions {
		want = append(want, GPTPartition{Number: i + 1, Type: strings.ToLower(p.Type), UUID: strings.ToLower(p.UUID),
			Name: p.Name, FirstLBA: p.Start, LastLBA: p.Start + p.Size - 1})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadGPT vs sfdisk --json (-want +got):\n%s", diff)
	}
	if got[0].Type != TypeESP || got[2].Type != TypeLUKS || got[1].Name != NameESPB {
		t.Errorf("types/names: %+v", got)
	}
}

// TestReadGPTBackup: a damaged primary header falls back to the backup.
func TestReadGPTBackup(t *testing.T) {
	img := sfdiskImage(t, gptScript)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("XX"), 512+20) // inside the header: CRC mismatch
	f.Close()
	got, err := readGPTFile(t, img)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadGPT(primary damaged) = %v, %v, want the backup's 3 partitions", got, err)
	}
}

func TestReadGPTErrors(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "blank.img")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	if _, err := readGPTFile(t, blank); err == nil || !strings.Contains(err.Error(), "no EFI PART signature") {
		t.Errorf("ReadGPT(blank) = %v, want no EFI PART signature", err)
	}
	img := sfdiskImage(t, gptScript)
	b, _ := os.ReadFile(img)
	b[1024+56] ^= 1                               // first entry's unique GUID: entries CRC mismatch
	copy(b[len(b)-33*512:], make([]byte, 33*512)) // and no backup
	os.WriteFile(img, b, 0o644)
	if _, err := readGPTFile(t, img); err == nil || !strings.Contains(err.Error(), "GPT entries at LBA 2: CRC32 mismatch") {
		t.Errorf("ReadGPT(bad entries) = %v, want the entries CRC error", err)
	}
	f, _ := os.Open(img)
	defer f.Close()
	if _, err := ReadGPT(f, 1<<20, 1024); err == nil || !strings.Contains(err.Error(), "sector size 1024 unsupported") {
		t.Errorf("ReadGPT(sector 1024) = %v", err)
	}
}

func FuzzReadGPT(f *testing.F) {
	// testdata/gpt.img: a 128 KiB disk partitioned by sfdisk (an ESP and
	// a LUKS partition, as in TestReadGPTOracle).
	seed, err := os.ReadFile(filepath.Join("testdata", "gpt.img"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, 512)
	f.Add(make([]byte, 4096), 512)
	f.Fuzz(func(t *testing.T, b []byte, ss int) {
		if ss != 4096 {
			ss = 512
		}
		parts, err := ReadGPT(readerAt(b), int64(len(b)), ss)
		if err != nil {
			return
		}
		for _, p := range parts {
			if p.FirstLBA > p.LastLBA || p.Number < 1 {
				t.Fatalf("ReadGPT returned a bad entry %+v", p)
			}
		}
	})
}

type readerAt []byte

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(r)) {
		return 0, os.ErrInvalid
	}
	n := copy(p, r[off:])
	if n < len(p) {
		return n, os.ErrInvalid
	}
	return n, nil
}
