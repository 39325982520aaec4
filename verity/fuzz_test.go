package verity

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzReadSuperblock(f *testing.F) {
	names, _ := filepath.Glob("testdata/*.hash")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:SuperblockSize])
	}
	f.Add([]byte("verity\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sb, err := ReadSuperblock(bytes.NewReader(b), 0)
		if err != nil {
			return
		}
		// A superblock that parses re-serializes to the same bytes, minus
		// the reserved fields, and describes a tree.
		out, err := sb.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ReadSuperblock(bytes.NewReader(out), 0)
		if err != nil || *again != *sb {
			t.Fatalf("ReadSuperblock(MarshalBinary(sb)) = %+v, %v, want %+v", again, err, sb)
		}
		if r, err := sb.Result(0, nil); err == nil {
			_ = r.TargetParams("a", "b")
		}
	})
}

func TestReadSuperblockErrors(t *testing.T) {
	good := readFile(t, "testdata/fixture.hash")[:SuperblockSize]
	tests := []struct {
		name string
		edit func(b []byte)
		want string
	}{
		{"magic", func(b []byte) { b[0] = 'V' }, "bad magic"},
		{"version", func(b []byte) { b[8] = 2 }, "unsupported version 2"},
		{"hash type", func(b []byte) { b[12] = 2 }, "unsupported hash type 2"},
		{"alg unterminated", func(b []byte) { copy(b[32:64], strings.Repeat("x", 32)) }, "not NUL-terminated"},
		{"alg unknown", func(b []byte) { copy(b[32:], "md5\x00\x00\x00") }, `"md5" is not supported`},
		{"data bs", func(b []byte) { b[64], b[65] = 0, 3 }, "data block size 768 is not a power of two"},
		{"hash bs", func(b []byte) { b[68], b[69], b[70] = 0, 0, 2 }, "hash block size 131072 is out of range"},
		{"data blocks", func(b []byte) { clear(b[72:80]) }, "data blocks is 0"},
		{"salt size", func(b []byte) { b[80], b[81] = 1, 1 }, "salt size 257 is more than 256"},
		{"short", nil, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(good)
			if tt.edit != nil {
				tt.edit(b)
			} else {
				b = b[:100]
			}
			_, err := ReadSuperblock(bytes.NewReader(b), 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadSuperblock(%s) = %v, want error containing %q", tt.name, err, tt.want)
			}
		})
	}
}
