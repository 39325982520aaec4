package verity

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixture is testdata/fixture.img formatted by veritysetup 2.6.1 into
// testdata/fixture.hash (see fixtureParams).
const fixtureRoot = "540b04e9e26e7e32d3435f76f67b8ba63ba5759041c082bf14c2b6a6b177d044"

func fixtureParams() Params {
	u, _ := ParseUUID("0e5a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b")
	salt, _ := hex.DecodeString("5eed0123456789abcdef5eed0123456789abcdef5eed0123456789abcdef5eed")
	return Params{DataBlockSize: 512, HashBlockSize: 512, Salt: salt, UUID: u}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// memFile is an in-memory io.ReaderAt + io.WriterAt safe for disjoint
// concurrent writes once grown.
type memFile struct{ b []byte }

func newMemFile(size int) *memFile { return &memFile{b: make([]byte, size)} }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if int(off)+len(p) > len(m.b) {
		return 0, errors.New("memFile: write beyond end")
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func TestSuperblockSize(t *testing.T) {
	if got := binary.Size(Superblock{}); got != SuperblockSize {
		t.Errorf("binary.Size(Superblock{}) = %d, want %d", got, SuperblockSize)
	}
}

func TestFixture(t *testing.T) {
	data := readFile(t, "testdata/fixture.img")
	want := readFile(t, "testdata/fixture.hash")
	hash := newMemFile(len(want))
	r, err := Format(bytes.NewReader(data), int64(len(data)), hash, 0, fixtureParams())
	if err != nil {
		t.Fatal(err)
	}
	if got := r.RootHashHex(); got != fixtureRoot {
		t.Errorf("Format(fixture).RootHash = %s, want %s", got, fixtureRoot)
	}
	if !bytes.Equal(hash.b, want) {
		t.Errorf("Format(fixture) hash area differs from veritysetup's testdata/fixture.hash")
	}
	if err := r.Verify(bytes.NewReader(data), bytes.NewReader(want)); err != nil {
		t.Errorf("Verify(fixture) = %v, want nil", err)
	}
	wantLevels := []Level{{Start: 2, Blocks: 3}, {Start: 1, Blocks: 1}}
	if diff := cmp.Diff(wantLevels, r.Levels); diff != "" {
		t.Errorf("Format(fixture).Levels diff (-want +got):\n%s", diff)
	}
}

func TestChromeOSFixture(t *testing.T) {
	data := readFile(t, "testdata/fixture.img")
	hash := readFile(t, "testdata/chromeos.hash")
	root, _ := hex.DecodeString("31a0fb2ecef613b6b84cc3e9b9ca5c5e6a601d7b")
	r, err := Open(bytes.NewReader(hash), 0, int64(len(data)), Params{}, root)
	if err != nil {
		t.Fatal(err)
	}
	if r.HashType != 0 || r.Hash != "sha1" || r.DataBlockSize != 1024 {
		t.Errorf("Open(chromeos.hash) = type %d %s %d, want type 0 sha1 1024", r.HashType, r.Hash, r.DataBlockSize)
	}
	if err := r.Verify(bytes.NewReader(data), bytes.NewReader(hash)); err != nil {
		t.Errorf("Verify(chromeos fixture) = %v, want nil", err)
	}
	out := newMemFile(len(hash))
	again, err := Format(bytes.NewReader(data), int64(len(data)), out, 0, r.Params())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.RootHash, root) || !bytes.Equal(out.b, hash) {
		t.Errorf("Format(chromeos params) root %x, want %x; bytes equal %v", again.RootHash, root, bytes.Equal(out.b, hash))
	}
}

func TestLayout(t *testing.T) {
	tests := []struct {
		name       string
		p          Params
		blocks     uint64
		off        int64
		wantStart  uint64
		wantLevels []Level
	}{
		{"one block", Params{}, 1, 0, 1, []Level{}},
		{"one leaf block", Params{}, 128, 0, 1, []Level{{1, 1}}},
		{"two levels", Params{}, 129, 0, 1, []Level{{2, 2}, {1, 1}}},
		{"no superblock", Params{NoSuperblock: true}, 256, 8192, 2, []Level{{3, 2}, {2, 1}}},
		{"offset 512", Params{}, 2, 512, 1, []Level{{1, 1}}},
		{"sha1 slots", Params{Hash: "sha1", HashBlockSize: 512}, 17, 0, 1, []Level{{2, 2}, {1, 1}}},
		{"three levels", Params{HashBlockSize: 512}, 16*16 + 1, 0, 1, []Level{{4, 17}, {2, 2}, {1, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.NoSalt = true
			r, err := NewResult(tt.p, tt.blocks, tt.off, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.HashStartBlock != tt.wantStart {
				t.Errorf("HashStartBlock = %d, want %d", r.HashStartBlock, tt.wantStart)
			}
			if diff := cmp.Diff(tt.wantLevels, r.Levels); diff != "" {
				t.Errorf("Levels diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParamsErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		size int64
		off  int64
		want string
	}{
		{"unknown hash", Params{Hash: "md5"}, 4096, 0, `hash algorithm "md5" is not supported`},
		{"block too small", Params{DataBlockSize: 256}, 4096, 0, "data block size 256 is out of range"},
		{"block too big", Params{HashBlockSize: 1 << 17}, 4096, 0, "hash block size 131072 is out of range"},
		{"block not power", Params{DataBlockSize: 3072}, 4096, 0, "data block size 3072 is not a power of two"},
		{"salt too long", Params{Salt: make([]byte, 257)}, 4096, 0, "257 bytes is more than 256"},
		{"salt and nosalt", Params{Salt: []byte{1}, NoSalt: true}, 4096, 0, "both a salt and no salt"},
		{"empty data", Params{}, 4095, 0, "no whole 4096-byte data block"},
		{"too many blocks", Params{DataBlocks: 3}, 8192, 0, "3 data blocks requested, the data holds 2"},
		{"odd offset", Params{}, 4096, 1000, "hash offset 1000: not a multiple of 512"},
		{"unaligned no sb", Params{NoSuperblock: true}, 4096, 1024, "not a multiple of the hash block size 4096"},
		{"negative offset", Params{}, 4096, -512, "hash offset -512: negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := bytes.NewReader(make([]byte, tt.size))
			_, err := Format(data, tt.size, newMemFile(1<<20), tt.off, tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Format(%s) = %v, want error containing %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestUUID(t *testing.T) {
	const s = "0e5a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
	u, err := ParseUUID(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.String(); got != s {
		t.Errorf("ParseUUID(%q).String() = %q", s, got)
	}
	for _, bad := range []string{"", "0e5a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2", "0e5a1b2c+3d4e-4f50-8a6b-7c8d9e0f1a2b", "0e5a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2g"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) = nil error, want error", bad)
		}
	}
	r, err := NewUUID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil || r.String() != "ffffffff-ffff-4fff-bfff-ffffffffffff" {
		t.Errorf("NewUUID(ff...) = %v, %v, want version 4 variant 1", r, err)
	}
}

func TestDefaults(t *testing.T) {
	data := make([]byte, 3*4096)
	r, err := Format(bytes.NewReader(data), int64(len(data)), newMemFile(1<<16), 0, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Hash != "sha256" || r.DataBlockSize != 4096 || r.HashBlockSize != 4096 || r.HashType != 1 ||
		len(r.Salt) != 32 || r.UUID.IsZero() || !r.Superblock {
		t.Errorf("Format(zero Params) = %+v, want veritysetup defaults", r)
	}
}

func TestTable(t *testing.T) {
	data := readFile(t, "testdata/fixture.img")
	r, err := Format(bytes.NewReader(data), int64(len(data)), newMemFile(4096), 0, fixtureParams())
	if err != nil {
		t.Fatal(err)
	}
	salt := hex.EncodeToString(fixtureParams().Salt)
	wantParams := "1 /dev/vda /dev/vdb 512 512 40 1 sha256 " + fixtureRoot + " " + salt
	if got := r.TargetParams("/dev/vda", "/dev/vdb"); got != wantParams {
		t.Errorf("TargetParams = %q, want %q", got, wantParams)
	}
	wantOpt := wantParams + " 3 ignore_zero_blocks use_fec_from_device /dev/vdc"
	if got := r.TargetParams("/dev/vda", "/dev/vdb", "ignore_zero_blocks", "use_fec_from_device /dev/vdc"); got != wantOpt {
		t.Errorf("TargetParams(opts) = %q, want %q", got, wantOpt)
	}
	wantTable := "0 40 verity " + wantParams
	if got := r.Table("/dev/vda", "/dev/vdb"); got != wantTable {
		t.Errorf("Table = %q, want %q", got, wantTable)
	}
	wantCmd := `dm-mod.create="root,,,ro,` + wantTable + `"`
	if got := r.KernelCmdline("root", "", "/dev/vda", "/dev/vdb"); got != wantCmd {
		t.Errorf("KernelCmdline = %q, want %q", got, wantCmd)
	}
	r.Salt = nil
	if got := r.TargetParams("a", "b"); !strings.HasSuffix(got, " -") {
		t.Errorf("TargetParams(no salt) = %q, want salt -", got)
	}
}
