package verity

import (
	"bytes"
	"errors"

	"path/filepath"
	"strings"
	"testing"
)

// TestShortData (issue 11): a data device shorter than its superblock says
// is refused before any read, naming both sizes, instead of faulting in
// the mapped file.
func TestShortData(t *testing.T) {
	data, hash, r := formatMem(t, 256*4096, Params{})
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	writeFile(t, short, data[:128*4096])
	f := openFile(t, short)

	_, err := Open(bytes.NewReader(hash.b), 0, 128*4096, Params{}, r.RootHash)
	wantShort(t, "Open", err, "data device is 524288 bytes, superblock needs 1048576 (256 blocks of 4096 bytes)")
	_, err = Open(bytes.NewReader(hash.b), 0, 128*4096, Params{NoSuperblock: true, DataBlocks: 256, NoSalt: true}, nil)
	wantShort(t, "Open(no superblock)", err, "data device is 524288 bytes, 256 data blocks of 4096 bytes need 1048576")
	wantShort(t, "Verify(short file)", r.Verify(f, bytes.NewReader(hash.b)), "data device is 524288 bytes, the tree covers 1048576")
	wantShort(t, "Verify(short reader)", r.Verify(bytes.NewReader(data[:4096]), bytes.NewReader(hash.b)), "data device is 4096 bytes")
	_, err = Format(f, 256*4096, newMemFile(1<<20), 0, Params{})
	wantShort(t, "Format(size beyond the file)", err, "data device is 524288 bytes, the tree covers 1048576")
	if _, err := Open(bytes.NewReader(hash.b), 0, 0, Params{}, r.RootHash); err != nil {
		t.Errorf("Open(data size unknown) = %v, want nil", err)
	}
}

func wantShort(t *testing.T, what string, err error, msg string) {
	t.Helper()
	if !errors.Is(err, ErrShortData) || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s = %v, want %v containing %q", what, err, ErrShortData, msg)
	}
}
