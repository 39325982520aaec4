//go:build vmguest

package dm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"initos/verity"
)

func verityFor(r *verity.Result, dataDev, hashDev string) Verity {
	return Verity{
		LegacyFormat: r.HashType == 0, DataDevice: dataDev, HashDevice: hashDev,
		DataBlockSize: r.DataBlockSize, HashBlockSize: r.HashBlockSize, DataBlocks: r.DataBlocks,
		HashStartBlock: r.HashStartBlock, Algorithm: r.Hash, RootDigest: r.RootHash, Salt: r.Salt,
	}
}

// formatVerity builds a 1 MiB data file and its tree (verity package).
func formatVerity(t *testing.T) (dataPath, hashPath string, data []byte, r *verity.Result) {
	t.Helper()
	dataPath, data = randomFile(t, "data.img", 256*blockSize)
	hashPath = filepath.Join(t.TempDir(), "hash.img")
	df, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer df.Close()
	hf, err := os.Create(hashPath)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if r, err = verity.Format(df, int64(len(data)), hf, 0, verity.Params{}); err != nil {
		t.Fatalf("verity.Format: %v", err)
	}
	return dataPath, hashPath, data, r
}

func openVerity(t *testing.T, name, dataPath, hashPath string, r *verity.Result, mode CorruptionMode) string {
	t.Helper()
	dl, hl := attachLoop(t, dataPath, true), attachLoop(t, hashPath, true)
	v := verityFor(r, dl.Path, hl.Path)
	v.OnCorruption = mode
	return create(t, name, true, v)
}

func statusOf(t *testing.T, name string) string {
	t.Helper()
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(name)
	if err != nil || len(st) != 1 {
		t.Fatalf("Status(%s) = %v, %v, want one target", name, st, err)
	}
	return st[0].Args
}

func TestGuestVerity(t *testing.T) {
	dataPath, hashPath, data, r := formatVerity(t)
	node := openVerity(t, "vt", dataPath, hashPath, r, CorruptionEIO)
	got, errs := readBlocks(t, node, 256)
	for i := range got {
		if errs[i] != nil || !bytes.Equal(got[i], data[i*blockSize:(i+1)*blockSize]) {
			t.Fatalf("block %d: err %v, identical %v, want the data file's block", i, errs[i], errs[i] == nil)
		}
	}
	if st := statusOf(t, "vt"); st != "V" {
		t.Errorf("Status(vt) = %q, want \"V\"", st)
	}
	c, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info("vt")
	if err != nil || !info.ReadOnly || !info.LiveTable || info.TargetCount != 1 {
		t.Errorf("Info(vt) = %+v, %v, want read-only with a live table of 1 target", info, err)
	}
	table, err := c.Table("vt")
	if err != nil || len(table) != 1 || table[0].Kind != "verity" || !strings.Contains(table[0].Args, r.RootHashHex()) {
		t.Errorf("Table(vt) = %v, %v, want a verity table with root %s", table, err, r.RootHashHex())
	}
	devs, err := c.List()
	if err != nil || len(devs) != 1 || devs[0].Name != "vt" || devs[0].Major != info.Major || devs[0].Minor != info.Minor {
		t.Errorf("List() = %v, %v, want [vt (%d:%d)]", devs, err, info.Major, info.Minor)
	}
}

func TestGuestVerityCorruption(t *testing.T) {
	dataPath, hashPath, data, r := formatVerity(t)
	const bad = 37
	f, err := os.OpenFile(dataPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{data[bad*blockSize+100] ^ 0x01}, bad*blockSize+100); err != nil {
		t.Fatal(err)
	}
	f.Close()

	node := openVerity(t, "vt-corrupt", dataPath, hashPath, r, CorruptionEIO)
	if st := statusOf(t, "vt-corrupt"); st != "V" {
		t.Errorf("Status before reading = %q, want \"V\"", st)
	}
	got, errs := readBlocks(t, node, 256)
	for i := range got {
		switch {
		case i == bad && !errors.Is(errs[i], unix.EIO):
			t.Errorf("block %d (corrupt): err = %v, want EIO", i, errs[i])
		case i != bad && (errs[i] != nil || !bytes.Equal(got[i], data[i*blockSize:(i+1)*blockSize])):
			t.Errorf("block %d: err %v, want the original data", i, errs[i])
		}
	}
	if st := statusOf(t, "vt-corrupt"); st != "C" {
		t.Errorf("Status after reading the corrupt block = %q, want \"C\"", st)
	}
}

// TestGuestVerityModes loads the other corruption modes and options over
// an intact tree (reading a corrupt block would restart or panic the VM).
func TestGuestVerityModes(t *testing.T) {
	dataPath, hashPath, data, r := formatVerity(t)
	for _, mode := range []CorruptionMode{CorruptionRestart, CorruptionIgnore, CorruptionPanic} {
		name := fmt.Sprintf("vt-mode%d", mode)
		node := openVerity(t, name, dataPath, hashPath, r, mode)
		got, errs := readBlocks(t, node, 256)
		for i := range got {
			if errs[i] != nil || !bytes.Equal(got[i], data[i*blockSize:(i+1)*blockSize]) {
				t.Fatalf("%s block %d: err %v, want the data", name, i, errs[i])
			}
		}
		c, err := Open()
		if err != nil {
			t.Fatal(err)
		}
		table, err := c.Table(name)
		c.Close()
		if err != nil || len(table) != 1 || !strings.HasSuffix(table[0].Args, corruptionArgs[mode]) {
			t.Errorf("Table(%s) = %v, %v, want it to end with %s", name, table, err, corruptionArgs[mode])
		}
		remove(t, name)
	}
}
